#pragma once
// What a CDC source needs, checked one by one. Each connector implements a
// prerequisite_prober; engines and the server see only this interface.
//
// Lifecycle: a prober is stateless; run_checks opens its own connection and
// closes it before returning. Cancellation: run_checks honours the awaiting
// coroutine's cancellation slot (terminal cancellation closes the connection).
#include "connectors/common/connection_spec.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace datavor::connectors {

enum class check_status { pass, warn, fail, skip };
std::string_view to_string(check_status s);

struct prerequisite_check {
    std::string id;      // stable, e.g. "replication_role"
    std::string title;   // human text, e.g. "Role has the REPLICATION attribute"
    check_status status = check_status::skip;
    std::string detail;  // what was found
    std::string fix;     // the exact SQL or setting that fixes a warn/fail; empty on pass
};

struct probe_request {
    connection_spec spec;
    std::optional<std::string> password;  // resolved secret; never logged
    std::vector<std::string> tables;      // "schema.table" or "table"
    std::chrono::seconds timeout{10};
};

struct probe_report {
    std::string server_version;
    std::vector<prerequisite_check> checks;
    bool ok() const;  // no check failed
};

using probe_progress = std::function<void(const prerequisite_check&)>;

// Appends checks to a report and announces each one as it is decided. A
// passing check never carries a fix.
class check_recorder {
public:
    check_recorder(probe_report& report, probe_progress progress)
        : report_(report), progress_(std::move(progress)) {}
    void operator()(std::string id, std::string title, check_status status, std::string detail, std::string fix = {});

private:
    probe_report& report_;
    probe_progress progress_;
};

class prerequisite_prober {
public:
    virtual ~prerequisite_prober() = default;
    virtual boost::asio::awaitable<probe_report> run_checks(probe_request req, probe_progress progress) = 0;
};

}  // namespace datavor::connectors
