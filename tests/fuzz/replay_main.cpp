// Runs a fuzz target without libFuzzer, so every build (the sanitizer build above all) checks
// each target on a fixed, bounded set of inputs: every seed file, prefixes of each seed (cut
// inputs), seeded mutations of each seed, and short random byte strings. The same inputs run
// every time; a target that aborts, crashes or trips a sanitizer fails the test.
//   replay_<target> SEED_DIR [MUTATIONS_PER_SEED]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

/// xorshift64*: small, deterministic, good enough to pick mutations.
class generator {
 public:
  explicit generator(std::uint64_t seed) : state_(seed | 1u) {}
  std::uint64_t next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545F4914F6CDD1DULL;
  }
  std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(next() % n); }

 private:
  std::uint64_t state_;
};

/// Tokens that tend to reach parser edges: structure, quotes, escapes, big and negative numbers.
constexpr std::string_view tokens[] = {
    "{",  "}",   "[",    "]",     ",",    ":",     "\"",   "\\",   "\\u0000", "null", "true",
    "-1", "-2",  "1e309", "9223372036854775808", "-9223372036854775809", "0.5", "<", ">",
    "/>", "&amp;", "&#0;", "xsi:nil=\"true\"", "\xff\xfe", "\r\n", ";", "=", "%00"};

std::string mutate(std::string input, generator& g) {
  const int steps = 1 + static_cast<int>(g.below(4));
  for (int i = 0; i < steps; ++i) {
    switch (g.below(5)) {
      case 0:  // flip a byte
        if (!input.empty()) input[g.below(input.size())] ^= static_cast<char>(1 + g.below(255));
        break;
      case 1:  // insert a token
        input.insert(g.below(input.size() + 1), tokens[g.below(std::size(tokens))]);
        break;
      case 2:  // delete a range
        if (!input.empty()) {
          const auto at = g.below(input.size());
          input.erase(at, 1 + g.below(std::min<std::size_t>(16, input.size() - at)));
        }
        break;
      case 3:  // duplicate a range
        if (!input.empty()) {
          const auto at = g.below(input.size());
          const auto len = 1 + g.below(std::min<std::size_t>(64, input.size() - at));
          input.insert(g.below(input.size() + 1), input.substr(at, len));
        }
        break;
      default:  // overwrite a byte with a structural character
        if (!input.empty()) input[g.below(input.size())] = "{}[]\",:<>/"[g.below(10)];
        break;
    }
  }
  return input;
}

void run(const std::string& input, std::size_t& count) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  ++count;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s SEED_DIR [MUTATIONS_PER_SEED]\n", argv[0]);
    return 2;
  }
  const long per_seed = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 200;
  std::vector<std::string> seeds;
  std::error_code ec;
  if (std::filesystem::is_directory(argv[1], ec)) {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(argv[1], ec)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      std::ifstream in(file, std::ios::binary);
      seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  generator g(0x5f3759df);
  std::size_t count = 0;
  run({}, count);
  for (const auto& seed : seeds) {
    run(seed, count);
    const std::size_t step = std::max<std::size_t>(1, seed.size() / 48);
    for (std::size_t cut = 0; cut < seed.size(); cut += step) run(seed.substr(0, cut), count);
    for (long i = 0; i < per_seed; ++i) run(mutate(seed, g), count);
  }
  for (int i = 0; i < 500; ++i) {
    std::string noise(g.below(128), '\0');
    for (auto& c : noise) c = static_cast<char>(g.below(256));
    run(noise, count);
  }
  std::printf("%zu inputs from %zu seeds, no failure\n", count, seeds.size());
  return 0;
}
