// flare-client --startup DIR: a site's node as a long-running daemon. It
// long-polls the server's JobDesk (deploy.proto) for jobs, runs each offered
// job as the per-job flare-client in <workspace>/jobs/<job_id>/, reaps them,
// survives the server going away, and on SIGTERM/SIGINT stops its jobs'
// clients and exits 0.
#pragma once

namespace flare::site_daemon {

// The whole program: options, startup folder, the poll loop. Exit codes: 0
// stopped on request, 2 bad options or startup folder.
int run_site_daemon(int argc, char** argv);

}  // namespace flare::site_daemon
