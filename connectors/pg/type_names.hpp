#pragma once
// PostgreSQL's name for a built-in type, as format_type(oid, typmod) spells
// it ("character varying(20)", "numeric(12,2)", "timestamp(3) with time
// zone", "integer[]"), for definitions that come from the log (a Relation
// message carries only OIDs); "" for types it does not know (user types).
#include <cstdint>
#include <string>

namespace datavor::connectors::pg {

std::string builtin_type_name(std::uint32_t oid, std::int32_t typmod);

}  // namespace datavor::connectors::pg
