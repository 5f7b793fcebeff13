#include "model/layer_members.h"

namespace fp8llm {

// Tables indexed by kind are built by walking these lists.
static_assert([] {
  for (size_t i = 0; i < kLayerLinearKinds.size(); ++i)
    if (static_cast<size_t>(kLayerLinearKinds[i]) != i) return false;
  for (size_t i = 0; i < kLayerNormKinds.size(); ++i)
    if (static_cast<size_t>(kLayerNormKinds[i]) != i) return false;
  return true;
}());

WeightRole weight_role_of(LinearKind kind) {
  switch (kind) {
    case LinearKind::Q:
      return WeightRole::QProj;
    case LinearKind::K:
      return WeightRole::KProj;
    case LinearKind::V:
      return WeightRole::VProj;
    case LinearKind::O:
      return WeightRole::OProj;
    case LinearKind::Gate:
      return WeightRole::GateProj;
    case LinearKind::Up:
      return WeightRole::UpProj;
    case LinearKind::Down:
      return WeightRole::DownProj;
    case LinearKind::LmHead:
      return WeightRole::LmHead;
  }
  fail("weight_role_of: unknown projection");
}

std::optional<LinearKind> linear_kind_of(WeightRole role) {
  switch (role) {
    case WeightRole::QProj:
    case WeightRole::QBias:
      return LinearKind::Q;
    case WeightRole::KProj:
    case WeightRole::KBias:
      return LinearKind::K;
    case WeightRole::VProj:
    case WeightRole::VBias:
      return LinearKind::V;
    case WeightRole::OProj:
    case WeightRole::OBias:
      return LinearKind::O;
    case WeightRole::GateProj:
    case WeightRole::GateBias:
      return LinearKind::Gate;
    case WeightRole::UpProj:
    case WeightRole::UpBias:
      return LinearKind::Up;
    case WeightRole::DownProj:
    case WeightRole::DownBias:
      return LinearKind::Down;
    case WeightRole::LmHead:
      return LinearKind::LmHead;
    default:
      return std::nullopt;
  }
}

std::optional<NormKind> norm_kind_of(WeightRole role) {
  switch (role) {
    case WeightRole::InputNorm:
      return NormKind::Input;
    case WeightRole::PostAttnNorm:
      return NormKind::PostAttention;
    case WeightRole::QNorm:
      return NormKind::QNorm;
    case WeightRole::KNorm:
      return NormKind::KNorm;
    case WeightRole::FinalNorm:
      return NormKind::Final;
    default:
      return std::nullopt;
  }
}

bool is_bias_role(WeightRole role) {
  switch (role) {
    case WeightRole::QBias:
    case WeightRole::KBias:
    case WeightRole::VBias:
    case WeightRole::OBias:
    case WeightRole::GateBias:
    case WeightRole::UpBias:
    case WeightRole::DownBias:
      return true;
    default:
      return false;
  }
}

}  // namespace fp8llm
