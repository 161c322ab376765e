#include "connectors/common/connector_error.hpp"

namespace datavor::connectors {

const char* to_string(failure_kind k) {
    switch (k) {
        case failure_kind::data: return "data";
        case failure_kind::transient: return "transient";
        case failure_kind::fatal: return "fatal";
    }
    return "fatal";
}

failure_kind classify_sqlstate(std::string_view s, bool retryable) {
    if (s.empty()) return retryable ? failure_kind::transient : failure_kind::fatal;
    const auto cls = s.substr(0, 2);
    // Data: data exception, integrity constraint violation, no privilege on
    // the object, a value of the wrong type.
    if (cls == "22" || cls == "23" || s == "42501" || s == "42804") return failure_kind::data;
    // Transient: connection exception, transaction rollback (serialization
    // failure, deadlock), insufficient resources (disk full, out of memory,
    // too many connections), operator intervention (shutdown, cannot connect
    // now, query cancelled), lock not available, system (I/O) error.
    if (cls == "08" || cls == "40" || cls == "53" || cls == "57" || s == "55P03" || cls == "58")
        return failure_kind::transient;
    return retryable ? failure_kind::transient : failure_kind::fatal;
}

failure_kind classify_sqlite(int extended) {
    switch (extended & 0xff) {
        case 18:  // SQLITE_TOOBIG
        case 19:  // SQLITE_CONSTRAINT (CHECK, NOT NULL, UNIQUE, PRIMARY KEY, FOREIGN KEY)
        case 20:  // SQLITE_MISMATCH
        case 25:  // SQLITE_RANGE
            return failure_kind::data;
        case 5:   // SQLITE_BUSY
        case 6:   // SQLITE_LOCKED
        case 7:   // SQLITE_NOMEM
        case 10:  // SQLITE_IOERR
        case 13:  // SQLITE_FULL
        case 14:  // SQLITE_CANTOPEN
        case 15:  // SQLITE_PROTOCOL
            return failure_kind::transient;
        default: return failure_kind::fatal;
    }
}

}  // namespace datavor::connectors
