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

void check_recorder::operator()(std::string id, std::string title, check_status status, std::string detail,
                                 std::string fix) {
    report_.checks.push_back({std::move(id), std::move(title), status, std::move(detail),
                              status == check_status::pass ? std::string{} : std::move(fix)});
    if (progress_) progress_(report_.checks.back());
}

}  // namespace datavor::connectors
