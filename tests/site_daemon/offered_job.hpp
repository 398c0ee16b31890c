// A job as the server offers it (resolved, absolute paths of the server's
// machine), for the site daemon's tests.
#pragma once

inline constexpr const char* kOfferedJob =
    "[job]\nname = \"tiny\"\nnum_rounds = 2\nplugin_path = [\"/server/plugins\"]\n"
    "workspace = \"/server/workspace\"\n"
    "[clients]\ncount = 2\ndevices = 1\n"
    "[trainer]\nplugin = \"cifar10\"\n"
    "[data]\ndir = \"/server/data\"\n";

// Loads nowhere: num_rounds is a string.
inline constexpr const char* kBrokenJob =
    "[job]\nnum_rounds = \"five\"\n[trainer]\nplugin = \"cifar10\"\n[data]\ndir = \"/d\"\n";
