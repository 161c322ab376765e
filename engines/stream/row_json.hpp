#pragma once
// Rows as JSON for the ledger: a key's identity ({"id":"7"}) and a failed
// change's full image, which retry_failed turns back into a change.
//
// Values keep the change model's states: null as null, text as a string,
// binary as {"hex":"…"}, unchanged (not carried by the log) as
// {"unchanged":true}.
#include "connectors/common/change.hpp"

#include <optional>
#include <string>
#include <vector>

namespace datavor::engines::stream {

// {"col":"value",…} over the key columns of `r`, in column order. Stable:
// the same key always gives the same text.
std::string key_json(const connectors::table_schema& t, const connectors::row& r);

// The keys a change touches: the old key, and the new one when it differs.
std::vector<std::string> keys_of(const connectors::change_event& c);

// {"table":"s.t","op":"c","columns":[…],"types":[…],"key":[…],"before":[…]|null,"after":[…]|null}
std::string change_json(const connectors::change_event& c);

// Rebuilds a change from change_json onto `current` (the table's definition
// now): columns matched by name; a column the image lacks is unchanged.
std::optional<connectors::change_event> change_from_json(const std::string& json,
                                                         std::shared_ptr<const connectors::table_schema> current);

}  // namespace datavor::engines::stream
