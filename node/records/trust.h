// What the verifier (node/security/verifier.h) needs to know about who may
// write: every known version of each operator's grant, and each host's key.
// The record store (node/records/store.h) implements it from the records it
// holds; tests implement it with maps.
#pragma once

#include "node/records/record.h"

#include <optional>
#include <string_view>
#include <vector>

namespace meshdeploy::records {

class trust_source {
 public:
  virtual ~trust_source() = default;
  // Every stored version of the grant for operator `op` (records of type grant, key
  // to_hex(op)), ascending by version. Unverified input never reaches this list.
  [[nodiscard]] virtual std::vector<record> grant_history(const public_key& op) const = 0;
  // The key bound to host `name` by its (verified) host record, if known.
  [[nodiscard]] virtual std::optional<public_key> host_key(std::string_view name) const = 0;
  // Whether deployment group APP/GROUP has automatic rollback on (its newest verified group
  // record), nullopt when the group is unknown. The default knows no group.
  [[nodiscard]] virtual std::optional<bool> group_auto_rollback(std::string_view app,
                                                                std::string_view group) const {
    (void)app;
    (void)group;
    return std::nullopt;
  }
};

}  // namespace meshdeploy::records
