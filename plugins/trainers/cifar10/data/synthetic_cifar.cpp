// Synthetic CIFAR-10-format data a CNN can learn, but not at once.
//
// Every class owns a few prototype scenes on a 40x40 canvas: a background
// gradient in random colours (a nuisance common to all classes), stripes whose
// orientation and period are the class's signature, and soft blobs in the
// class's hue (an easy but unreliable cue). An image is a 32x32 window of one of its
// class's prototypes at a random offset, maybe rotated by 180 degrees (which
// keeps the stripe orientation), with contrast/brightness/colour jitter, a patch
// of clutter cut from another class's prototype, and pixel noise.
//
// Only integer RNG output and + - * / sqrt in float are used, so the bytes are
// the same on every platform (no std::*_distribution, no libm transcendentals).
#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cifar_format.hpp"

namespace flare::cifar {
namespace {

constexpr int kSide = 32;
constexpr int kCanvas = 40;  // prototypes are larger than images: room to shift
constexpr int kPlane = kSide * kSide;
constexpr int kPrototypesPerClass = 6;
constexpr int kGeneratorVersion = 1;  // bump when the bytes for a spec change

// Difficulty knobs. Calibrated with bench's torch_reference.py (LitNet, 1 client,
// 10000 train / 2000 test, seed 0): test accuracy 0.27, 0.50, 0.67 after rounds
// 1-3; a nearest-class-mean classifier gets 0.28. Bump kGeneratorVersion on change.
constexpr float kStripeAmplitude = 0.45f;
constexpr float kBlobStrength = 0.85f;
constexpr float kClutterProbability = 0.6f;
constexpr float kNoiseLevels = 10.0f;  // standard deviation of the pixel noise, in grey levels

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// xoshiro256** (Blackman & Vigna): small, fast, the same everywhere.
class Random {
 public:
  explicit Random(std::uint64_t seed) {
    for (auto& s : state_) s = splitmix64(seed);
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }
  // In [0, n); the tiny bias of the multiply-shift is irrelevant here.
  std::uint32_t below(std::uint32_t n) {
    return static_cast<std::uint32_t>(((next() >> 32) * n) >> 32);
  }
  // In [lo, hi).
  float uniform(float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>(next() >> 40) * (1.0f / 16777216.0f);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> state_{};
};

// A seed for one purpose (prototypes, one split's labels, one image).
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t purpose, std::uint64_t index) {
  std::uint64_t s = seed;
  std::uint64_t a = splitmix64(s) ^ (purpose * 0xD1B54A32D192ED03ULL);
  return splitmix64(a) ^ (index * 0x8CB92BA72F3D8DD7ULL);
}

using Colour = std::array<float, 3>;
using Canvas = std::array<float, 3 * kCanvas * kCanvas>;  // planes R, G, B

Colour random_colour(Random& rng, float lo = 0.1f, float hi = 0.9f) {
  return {rng.uniform(lo, hi), rng.uniform(lo, hi), rng.uniform(lo, hi)};
}

// Smooth periodic wave in [0, 1] from a triangle wave and smoothstep.
float wave(float t) {
  float f = t - static_cast<float>(static_cast<long>(t + 1000.0f) - 1000);
  float tri = f < 0.5f ? 2.0f * f : 2.0f - 2.0f * f;
  return tri * tri * (3.0f - 2.0f * tri);
}

// Stripe direction per class (integer vectors: about 0, 37, 72, 108, 143
// degrees); classes 0-4 have wide stripes, 5-9 narrow ones.
constexpr int kDirections[5][2] = {{1, 0}, {4, 3}, {1, 3}, {-1, 3}, {-4, 3}};
constexpr float kPeriods[2] = {11.0f, 6.0f};
// Each class's blob hue.
constexpr Colour kClassHues[kNumClasses] = {
    Colour{0.9f, 0.2f, 0.2f}, {0.2f, 0.8f, 0.2f}, {0.2f, 0.3f, 0.9f}, {0.9f, 0.8f, 0.1f},
    {0.8f, 0.2f, 0.8f},       {0.1f, 0.8f, 0.8f}, {0.95f, 0.55f, 0.1f}, {0.5f, 0.3f, 0.1f},
    {0.95f, 0.95f, 0.95f},    {0.1f, 0.1f, 0.1f}};

Canvas make_prototype(int label, Random& rng) {
  Canvas canvas{};
  const Colour from = random_colour(rng), to = random_colour(rng);
  int gx = static_cast<int>(rng.below(7)) - 3, gy = static_cast<int>(rng.below(7)) - 3;
  if (gx == 0 && gy == 0) gx = 1;
  const float glen = std::sqrt(static_cast<float>(gx * gx + gy * gy)) * kCanvas;

  const auto* dir = kDirections[label % 5];
  const float dlen = std::sqrt(static_cast<float>(dir[0] * dir[0] + dir[1] * dir[1]));
  const float period = kPeriods[label / 5] * rng.uniform(0.85f, 1.15f);
  const float phase = rng.uniform(0.0f, 1.0f);
  const Colour stripe = random_colour(rng, 0.0f, 1.0f);

  struct Blob {
    float x, y, r2;
    Colour colour;
  };
  std::array<Blob, 3> blobs{};
  for (auto& b : blobs) {
    float r = rng.uniform(5.0f, 10.0f);
    b = {rng.uniform(6.0f, kCanvas - 6.0f), rng.uniform(6.0f, kCanvas - 6.0f), r * r, {}};
    for (int ch = 0; ch < 3; ++ch) {
      b.colour[ch] = std::clamp(kClassHues[label][ch] + rng.uniform(-0.15f, 0.15f), 0.0f, 1.0f);
    }
  }

  for (int y = 0; y < kCanvas; ++y) {
    for (int x = 0; x < kCanvas; ++x) {
      const float g = 0.5f + static_cast<float>(gx * (x - kCanvas / 2) + gy * (y - kCanvas / 2)) / glen;
      const float s = kStripeAmplitude *
                      wave(static_cast<float>(dir[0] * x + dir[1] * y) / (dlen * period) + phase);
      Colour c;
      for (int ch = 0; ch < 3; ++ch) c[ch] = from[ch] + (to[ch] - from[ch]) * g;
      for (int ch = 0; ch < 3; ++ch) c[ch] += (stripe[ch] - c[ch]) * s;
      for (const auto& b : blobs) {
        const float dx = static_cast<float>(x) - b.x, dy = static_cast<float>(y) - b.y;
        float bump = 1.0f - (dx * dx + dy * dy) / b.r2;
        if (bump <= 0.0f) continue;
        bump = kBlobStrength * bump * bump;
        for (int ch = 0; ch < 3; ++ch) c[ch] += (b.colour[ch] - c[ch]) * bump;
      }
      for (int ch = 0; ch < 3; ++ch) canvas[(ch * kCanvas + y) * kCanvas + x] = c[ch];
    }
  }
  return canvas;
}

struct Prototypes {
  std::vector<Canvas> canvases;  // class-major: label * kPrototypesPerClass + k
  const Canvas& of(int label, std::uint32_t k) const {
    return canvases[static_cast<std::size_t>(label) * kPrototypesPerClass + k];
  }
};

Prototypes make_prototypes(std::uint64_t seed) {
  Prototypes p;
  Random rng(derive_seed(seed, 1, 0));
  for (int label = 0; label < kNumClasses; ++label) {
    for (int k = 0; k < kPrototypesPerClass; ++k) p.canvases.push_back(make_prototype(label, rng));
  }
  return p;
}

// Roughly normal noise from the sum of four bytes: mean 0, sd about 1.
float noise(std::uint64_t bits, int which) {
  const auto b = [&](int i) { return static_cast<int>((bits >> (8 * (4 * which + i))) & 0xFF); };
  return static_cast<float>(b(0) + b(1) + b(2) + b(3) - 510) * (1.0f / 147.8f);
}

void render_image(const Prototypes& prototypes, int label, Random& rng, std::uint8_t* out) {
  const Canvas& scene = prototypes.of(label, rng.below(kPrototypesPerClass));
  const int ox = static_cast<int>(rng.below(kCanvas - kSide + 1));
  const int oy = static_cast<int>(rng.below(kCanvas - kSide + 1));
  const bool rotated = rng.below(2) == 1;
  const float contrast = rng.uniform(0.6f, 1.3f);
  const float brightness = rng.uniform(-0.15f, 0.15f);
  Colour gain;
  for (auto& g : gain) g = rng.uniform(0.88f, 1.12f);

  // Clutter: a rectangle cut from another class's prototype.
  int cx0 = 0, cy0 = 0, cx1 = 0, cy1 = 0, cox = 0, coy = 0;
  const Canvas* clutter = nullptr;
  if (rng.uniform(0.0f, 1.0f) < kClutterProbability) {
    const int other = (label + 1 + static_cast<int>(rng.below(kNumClasses - 1))) % kNumClasses;
    clutter = &prototypes.of(other, rng.below(kPrototypesPerClass));
    const int w = 8 + static_cast<int>(rng.below(9)), h = 8 + static_cast<int>(rng.below(9));
    cx0 = static_cast<int>(rng.below(kSide - w + 1));
    cy0 = static_cast<int>(rng.below(kSide - h + 1));
    cx1 = cx0 + w;
    cy1 = cy0 + h;
    cox = static_cast<int>(rng.below(kCanvas - kSide + 1));
    coy = static_cast<int>(rng.below(kCanvas - kSide + 1));
  }

  std::array<float, 3 * kSide> row_noise;
  for (int y = 0; y < kSide; ++y) {
    for (std::size_t i = 0; i < row_noise.size(); i += 2) {
      const std::uint64_t bits = rng.next();
      row_noise[i] = noise(bits, 0);
      row_noise[i + 1] = noise(bits, 1);
    }
    const int sy = rotated ? kSide - 1 - y : y;
    for (int x = 0; x < kSide; ++x) {
      const int sx = rotated ? kSide - 1 - x : x;
      const bool in_clutter = clutter && x >= cx0 && x < cx1 && y >= cy0 && y < cy1;
      for (int ch = 0; ch < 3; ++ch) {
        float v = in_clutter ? (*clutter)[(ch * kCanvas + y + coy) * kCanvas + x + cox]
                             : scene[(ch * kCanvas + sy + oy) * kCanvas + sx + ox];
        v = contrast * (gain[ch] * v - 0.5f) + 0.5f + brightness;
        float level = std::floor(v * 255.0f + kNoiseLevels * row_noise[ch * kSide + x] + 0.5f);
        out[ch * kPlane + y * kSide + x] = static_cast<std::uint8_t>(std::clamp(level, 0.0f, 255.0f));
      }
    }
  }
}

// Balanced classes in a seeded random order (Fisher-Yates).
std::vector<std::uint8_t> shuffled_labels(std::uint64_t seed, std::uint64_t split, std::size_t count) {
  std::vector<std::uint8_t> labels(count);
  for (std::size_t i = 0; i < count; ++i) labels[i] = static_cast<std::uint8_t>(i % kNumClasses);
  Random order(derive_seed(seed, 2, split));
  for (std::size_t i = count; i > 1; --i) std::swap(labels[i - 1], labels[order.next() % i]);
  return labels;
}

// Images [begin, end) of a split. Each image has its own RNG stream, so any
// range renders the same bytes whichever way the split is cut into files.
CifarImages render_range(const Prototypes& prototypes, std::uint64_t seed, std::uint64_t split,
                         const std::vector<std::uint8_t>& labels, std::size_t begin, std::size_t end) {
  CifarImages images;
  images.labels.assign(labels.begin() + begin, labels.begin() + end);
  images.pixels.resize((end - begin) * kImageBytes);
  for (std::size_t i = begin; i < end; ++i) {
    Random rng(derive_seed(seed, 3 + split, i));
    render_image(prototypes, labels[i], rng, images.pixels.data() + (i - begin) * kImageBytes);
  }
  return images;
}

}  // namespace

void generate_synthetic_cifar(const std::filesystem::path& dir, const SyntheticSpec& spec) {
  if (spec.train_images < 5 || spec.test_images < 1) {
    throw std::invalid_argument("synthetic CIFAR-10 needs at least 5 training images (one per batch "
                                "file) and 1 test image; asked for " +
                                std::to_string(spec.train_images) + " / " +
                                std::to_string(spec.test_images));
  }
  std::filesystem::create_directories(dir);
  const Prototypes prototypes = make_prototypes(spec.seed);

  const auto train_labels = shuffled_labels(spec.seed, 0, spec.train_images);
  std::size_t begin = 0;
  for (std::size_t b = 0; b < 5; ++b) {
    const std::size_t count = spec.train_images / 5 + (b < spec.train_images % 5 ? 1 : 0);
    write_cifar_file(dir / ("data_batch_" + std::to_string(b + 1) + ".bin"),
                     render_range(prototypes, spec.seed, 0, train_labels, begin, begin + count));
    begin += count;
  }
  const auto test_labels = shuffled_labels(spec.seed, 1, spec.test_images);
  write_cifar_file(dir / "test_batch.bin",
                   render_range(prototypes, spec.seed, 1, test_labels, 0, spec.test_images));

  std::ofstream(dir / "batches.meta.txt")
      << "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
  // Written last: its presence means the set is complete.
  nlohmann::ordered_json info = {{"source", "synthetic"},
                                 {"seed", spec.seed},
                                 {"train_images", spec.train_images},
                                 {"test_images", spec.test_images},
                                 {"generator", "flare-make-cifar"},
                                 {"generator_version", kGeneratorVersion}};
  std::ofstream(dir / "flare-data.json") << info.dump(2) << '\n';
}

}  // namespace flare::cifar
