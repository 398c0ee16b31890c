// Writing into the project folder: private folders, files replaced atomically
// and only when their content changes, a whole startup folder swapped in at
// once. Internal to flare_provision.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace flare::provision {

// A folder (and its parents) created 0700; an existing one is made 0700.
void make_private_folder(const std::filesystem::path& folder);

std::optional<std::string> read_if_present(const std::filesystem::path& file);

// Writes `content` atomically unless the file already holds exactly it (so a
// re-run leaves bytes and times alone); returns whether it wrote.
bool write_if_changed(const std::filesystem::path& file, const std::string& content, unsigned mode);

// File name -> (content, mode).
using FolderContent = std::map<std::string, std::pair<std::string, unsigned>>;

// Builds `content` in a staging folder beside `folder`, then puts it in place
// in one rename (exchanging it with an existing folder, which is then
// removed): a failure part-way leaves the old folder as it was.
void replace_folder(const std::filesystem::path& folder, const FolderContent& content);

}  // namespace flare::provision
