// libFuzzer target: bytes -> CIFAR-10 records (cifar::append_cifar_records, the
// parser behind read_cifar_files). CifarFormatError is the reader's answer to
// a bad file; anything else escaping, a sanitizer report, a hang, or images
// that break the reader's promises (labels 0..9, one 3072-byte image each) is
// a finding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "cifar_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flare::cifar;
  CifarImages images;
  try {
    append_cifar_records(std::span(data, size), "fuzz.bin", images);
  } catch (const CifarFormatError&) {
    return 0;
  }
  bool labels_ok = images.size() * kRecordBytes == size;
  for (const std::uint8_t label : images.labels) labels_ok = labels_ok && label < kNumClasses;
  if (!labels_ok || images.pixels.size() != images.size() * kImageBytes) {
    std::fprintf(stderr, "append_cifar_records accepted %zu bytes but returned %zu labels, "
                 "%zu pixel bytes\n", size, images.labels.size(), images.pixels.size());
    std::abort();
  }
  return 0;
}
