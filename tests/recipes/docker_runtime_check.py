#!/usr/bin/python3
"""deploy/docker's runtime stages hold every library the installed programs
need: this build is installed (cmake --install) into a temporary prefix, each
program's and plugin's libraries (ldd) are traced to their Debian packages
(dpkg -S), and each package must be one the stage installs or one of their
dependencies (apt-cache depends --recurse). The `runtime` stage
(packages-runtime.txt) runs the server, the admin tool, the site daemon and
the aggregator plugins; the `site` stage adds packages-site.txt for
flare-worker and the trainer plugins. A library of no package, or of one the
stage lacks, fails with its name and who needs it. Exit 77: not Debian.

Usage: docker_runtime_check.py CMAKE BUILD_DIR SOURCE_DIR
"""
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def read_packages(path):
    names = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [name for name in names if name]


def dependency_closure(packages):
    """The packages and everything they depend on (alternatives included)."""
    out = subprocess.run(
        ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
         "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *packages],
        check=True, capture_output=True, text=True).stdout
    return {line.strip("<>") for line in out.splitlines() if line and not line.startswith(" ")}


def needed_libraries(binary):
    """The absolute paths ldd resolves; a library it cannot find is fatal."""
    out = subprocess.run(["ldd", str(binary)], check=True, capture_output=True, text=True).stdout
    missing = [line.split()[0] for line in out.splitlines() if "not found" in line]
    if missing:
        sys.exit(f"FAIL: {binary.name} needs {', '.join(missing)}, not found here")
    return {m.group(1) for m in re.finditer(r"=> (/\S+)", out)}


def owning_packages(paths):
    """Each path's Debian package, trying the path as written and resolved
    (merged /usr: dpkg may know either spelling)."""
    spellings = {}
    for path in paths:
        real = str(pathlib.Path(path).resolve())
        variants = {path, real}
        for spelling in list(variants):
            if spelling.startswith("/usr/"):
                variants.add(spelling[4:])
            else:
                variants.add("/usr" + spelling)
        for spelling in variants:
            spellings[spelling] = path
    out = subprocess.run(["dpkg-query", "-S", *spellings], capture_output=True, text=True).stdout
    owner = {}
    for line in out.splitlines():
        package, _, spelling = line.partition(": ")
        if spelling in spellings and ", " not in package:
            owner[spellings[spelling]] = package.split(":")[0]
    return owner


def main():
    cmake, build, source = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    for tool in ("apt-cache", "dpkg-query", "ldd"):
        if not shutil.which(tool):
            print(f"skipped: {tool} is not here (the images are Debian 12)")
            return SKIP
    docker = source / "deploy" / "docker"
    runtime = read_packages(docker / "packages-runtime.txt")
    site = runtime + read_packages(docker / "packages-site.txt")
    trainers = set(re.findall(r"flare_add_plugin\(\s*NAME\s+(\w+)",
                              "".join(p.read_text() for p in (source / "plugins" / "trainers").rglob("CMakeLists.txt"))))
    with tempfile.TemporaryDirectory() as tmp:
        prefix = pathlib.Path(tmp) / "opt" / "flare"
        subprocess.run([cmake, "--install", str(build), "--prefix", str(prefix)],
                       check=True, stdout=subprocess.DEVNULL)
        programs = sorted(p for p in (prefix / "bin").iterdir() if not p.name.endswith(".lookup-order"))
        plugins = sorted((prefix / "plugins").glob("*.so"))
        site_only = {prefix / "bin" / "flare-worker"} | {
            p for p in plugins if p.name in {f"libflare_{t}.so" for t in trainers}}
        needs = {binary: needed_libraries(binary) for binary in programs + plugins}
        owner = owning_packages(set().union(*needs.values()))
        failures = 0
        for stage, packages, binaries in (
                ("runtime", runtime, [b for b in needs if b not in site_only]),
                ("site", site, list(needs))):
            closure = dependency_closure(packages)
            for binary in binaries:
                for library in sorted(needs[binary]):
                    package = owner.get(library)
                    if package is None:
                        print(f"FAIL: {binary.name} needs {library}, which no Debian package installs")
                        failures += 1
                    elif package not in closure:
                        print(f"FAIL: stage {stage}: {binary.name} needs {library} from {package}, "
                              f"not among deploy/docker's packages or their dependencies")
                        failures += 1
            print(f"stage {stage}: {len(binaries)} programs and plugins checked against "
                  f"{len(packages)} packages ({len(closure)} with dependencies)")
        print("installed:", ", ".join(b.name for b in programs))
        # The images' ENTRYPOINTs: built here means it must be installed too.
        entrypoints = re.findall(r'^ENTRYPOINT \["([^"]+)"', (docker / "Dockerfile").read_text(), re.M)
        for program in entrypoints:
            if not (prefix / "bin" / program).exists():
                if (build / "bin" / program).exists():
                    print(f"FAIL: {program} (an image's ENTRYPOINT) is built but not installed "
                          f"(cmake/FlareInstall.cmake)")
                    failures += 1
                else:
                    print(f"note: {program} (an image's ENTRYPOINT) is not built in this tree")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
