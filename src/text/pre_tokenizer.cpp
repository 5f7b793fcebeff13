#include "text/pre_tokenizer.h"

#include <algorithm>
#include <string>

#include "text/byte_level.h"

namespace fp8llm {
namespace {

struct Region {
  size_t begin, end;
  bool flag;  // is a match (before the behavior is applied); to be removed (after)
};

SplitBehavior parse_behavior(const JsonView& node) {
  const std::string b = node.as_string();
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  node.fail(
      "'{}' is not supported (supported: Removed, Isolated, MergedWithPrevious, MergedWithNext, "
      "Contiguous)",
      b);
}

}  // namespace

void split_by_behavior(const std::vector<std::pair<size_t, size_t>>& matches, size_t length,
                       SplitBehavior behavior, bool invert,
                       std::vector<std::pair<size_t, size_t>>& pieces) {
  // Matches and the gaps between them, in order (tokenizers' Pattern::find_matches).
  std::vector<Region> regions;
  regions.reserve(2 * matches.size() + 1);
  size_t prev = 0;
  for (const auto& [begin, end] : matches) {
    if (prev != begin) regions.push_back({prev, begin, invert});
    regions.push_back({begin, end, !invert});
    prev = end;
  }
  if (prev != length || regions.empty()) regions.push_back({prev, length, invert});

  std::vector<Region> kept;
  kept.reserve(regions.size());
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Region& r : regions) kept.push_back({r.begin, r.end, false});
      break;
    case SplitBehavior::kRemoved:
      kept = regions;
      break;
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Region& r : regions) {
        if (r.flag == previous_match && !kept.empty()) {
          kept.back().end = r.end;
        } else {
          kept.push_back({r.begin, r.end, false});
        }
        previous_match = r.flag;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Region& r : regions) {
        if (r.flag && !previous_match && !kept.empty()) {
          kept.back().end = r.end;
        } else {
          kept.push_back({r.begin, r.end, false});
        }
        previous_match = r.flag;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = regions.rbegin(); it != regions.rend(); ++it) {
        if (it->flag && !previous_match && !kept.empty()) {
          kept.back().begin = it->begin;
        } else {
          kept.push_back({it->begin, it->end, false});
        }
        previous_match = it->flag;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    }
  }
  pieces.clear();
  for (const Region& r : kept) {
    if (!r.flag && r.end > r.begin) pieces.emplace_back(r.begin, r.end);
  }
}

// Per-thread buffers, one per step, reused across calls.
struct PreTokenizer::Scratch {
  std::vector<std::vector<std::pair<size_t, size_t>>> matches;
  std::vector<std::vector<std::pair<size_t, size_t>>> pieces;
  std::vector<std::string> text;
};

PreTokenizer PreTokenizer::parse(const JsonView& node) {
  PreTokenizer p;
  if (!node.is_null()) parse_into(node, p.steps_);
  return p;
}

void PreTokenizer::parse_into(const JsonView& node, std::vector<Step>& steps) {
  const std::string type = node["type"].as_string();
  if (type == "Sequence") {
    const JsonView list = node["pretokenizers"];
    for (size_t i = 0; i < list.as_array().size(); ++i) parse_into(list[i], steps);
  } else if (type == "Split") {
    const JsonView pattern = node["pattern"];
    pattern.as_object();
    std::optional<Regex> regex;
    if (const auto r = pattern.find("Regex")) {
      regex.emplace(r->as_string(), false, r->where());
    } else if (const auto s = pattern.find("String")) {
      regex.emplace(s->as_string(), true, s->where());
    } else {
      pattern.fail("must have a 'Regex' or 'String' member");
    }
    steps.push_back(
        {Split{std::move(*regex), parse_behavior(node["behavior"]), node.bool_or("invert", false)},
         std::nullopt});
  } else if (type == "ByteLevel") {
    ByteLevel b{node.bool_or("add_prefix_space", true), std::nullopt};
    if (node.bool_or("use_regex", true)) {
      b.regex.emplace(kGpt2SplitRegex, false, node.where());
    }
    steps.push_back({std::nullopt, std::move(b)});
  } else {
    node["type"].fail("'{}' is not supported (supported: Sequence, Split, ByteLevel)", type);
  }
}

bool PreTokenizer::ends_with_byte_level() const {
  return !steps_.empty() && steps_.back().byte_level.has_value();
}

void PreTokenizer::run(std::string_view text,
                       const std::function<void(std::string_view)>& sink) const {
  if (text.empty()) return;
  thread_local Scratch scratch;
  // A sink may re-enter (another tokenizer on this thread); each call gets buffers of its own
  // depth only when needed, so keep one set per nesting level.
  thread_local int depth = 0;
  if (depth > 0) {
    Scratch local;
    local.matches.resize(steps_.size());
    local.pieces.resize(steps_.size());
    local.text.resize(steps_.size());
    run_step(0, text, local, sink);
    return;
  }
  ++depth;
  struct Leave {
    ~Leave() { --depth; }
  } leave;
  if (scratch.matches.size() < steps_.size()) {
    scratch.matches.resize(steps_.size());
    scratch.pieces.resize(steps_.size());
    scratch.text.resize(steps_.size());
  }
  run_step(0, text, scratch, sink);
}

void PreTokenizer::run_step(size_t index, std::string_view piece, Scratch& scratch,
                            const std::function<void(std::string_view)>& sink) const {
  if (index == steps_.size()) {
    sink(piece);
    return;
  }
  const Step& step = steps_[index];
  auto& matches = scratch.matches[index];
  auto& pieces = scratch.pieces[index];
  if (step.split) {
    step.split->regex.find_all(piece, matches);
    split_by_behavior(matches, piece.size(), step.split->behavior, step.split->invert, pieces);
    // Deeper steps reuse only their own buffers, so `pieces` stays intact while we recurse.
    for (const auto& [begin, end] : pieces)
      run_step(index + 1, piece.substr(begin, end - begin), scratch, sink);
    return;
  }
  const ByteLevel& b = *step.byte_level;
  std::string& text = scratch.text[index];
  std::string_view source = piece;
  if (b.add_prefix_space && piece.front() != ' ') {
    text.assign(1, ' ');
    text.append(piece);
    source = text;
  }
  if (b.regex) {
    b.regex->find_all(source, matches);
    split_by_behavior(matches, source.size(), SplitBehavior::kIsolated, false, pieces);
  } else {
    pieces.assign(1, {0, source.size()});
  }
  const bool last = index + 1 == steps_.size();
  if (last) {
    // Raw bytes: the model matches them against its vocabulary translated back to bytes.
    for (const auto& [begin, end] : pieces) sink(source.substr(begin, end - begin));
    return;
  }
  std::string mapped;
  for (const auto& [begin, end] : pieces) {
    mapped.clear();
    append_byte_level(mapped, source.substr(begin, end - begin));
    run_step(index + 1, mapped, scratch, sink);
  }
}

}  // namespace fp8llm
