#include "connectors/common/prerequisites.hpp"

#include <algorithm>

namespace datavor::connectors {

std::string_view to_string(check_status s) {
    switch (s) {
        case check_status::pass: return "pass";
        case check_status::warn: return "warn";
        case check_status::fail: return "fail";
        case check_status::skip: return "skip";
    }
    return "skip";
}

bool probe_report::ok() const {
    return std::none_of(checks.begin(), checks.end(),
                        [](const prerequisite_check& c) { return c.status == check_status::fail; });
}

}  // namespace datavor::connectors
