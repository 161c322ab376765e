#include "connectors/pg/type_names.hpp"

namespace datavor::connectors::pg {

namespace {

std::string base_name(std::uint32_t oid) {
    switch (oid) {
    case 16: return "boolean";
    case 17: return "bytea";
    case 18: return "\"char\"";
    case 19: return "name";
    case 20: return "bigint";
    case 21: return "smallint";
    case 23: return "integer";
    case 25: return "text";
    case 26: return "oid";
    case 114: return "json";
    case 142: return "xml";
    case 650: return "cidr";
    case 700: return "real";
    case 701: return "double precision";
    case 790: return "money";
    case 829: return "macaddr";
    case 869: return "inet";
    case 1042: return "character";
    case 1043: return "character varying";
    case 1082: return "date";
    case 1083: return "time without time zone";
    case 1114: return "timestamp without time zone";
    case 1184: return "timestamp with time zone";
    case 1186: return "interval";
    case 1266: return "time with time zone";
    case 1560: return "bit";
    case 1562: return "bit varying";
    case 1700: return "numeric";
    case 2950: return "uuid";
    case 3614: return "tsvector";
    case 3802: return "jsonb";
    default: return {};
    }
}

std::uint32_t element_of(std::uint32_t array_oid) {
    switch (array_oid) {
    case 1000: return 16;
    case 1001: return 17;
    case 1005: return 21;
    case 1007: return 23;
    case 1016: return 20;
    case 1009: return 25;
    case 1014: return 1042;
    case 1015: return 1043;
    case 1021: return 700;
    case 1022: return 701;
    case 1231: return 1700;
    case 1182: return 1082;
    case 1183: return 1083;
    case 1115: return 1114;
    case 1185: return 1184;
    case 1187: return 1186;
    case 1270: return 1266;
    case 2951: return 2950;
    case 199: return 114;
    case 3807: return 3802;
    case 1041: return 869;
    case 651: return 650;
    default: return 0;
    }
}

std::string with_typmod(std::uint32_t oid, std::int32_t typmod) {
    std::string base = base_name(oid);
    if (base.empty() || typmod < 0) return base;
    switch (oid) {
    case 1042: case 1043: return base + "(" + std::to_string(typmod - 4) + ")";
    case 1560: case 1562: return base + "(" + std::to_string(typmod) + ")";
    case 1700: {
        const int t = typmod - 4;
        return base + "(" + std::to_string((t >> 16) & 0xffff) + "," + std::to_string(t & 0xffff) + ")";
    }
    case 1083: return "time(" + std::to_string(typmod) + ") without time zone";
    case 1266: return "time(" + std::to_string(typmod) + ") with time zone";
    case 1114: return "timestamp(" + std::to_string(typmod) + ") without time zone";
    case 1184: return "timestamp(" + std::to_string(typmod) + ") with time zone";
    case 1186: return {};  // interval's typmod carries fields too: left to the catalog
    default: return base;
    }
}

}  // namespace

std::string builtin_type_name(std::uint32_t oid, std::int32_t typmod) {
    if (auto element = element_of(oid)) {
        auto e = with_typmod(element, typmod);
        return e.empty() ? e : e + "[]";
    }
    return with_typmod(oid, typmod);
}

}  // namespace datavor::connectors::pg
