#pragma once
// A parsed connection URL: everything needed to reach a database except the
// password, which never lives in this type (see engines/context/secret_store).
//
// Accepted forms:
//   postgresql://user@host:port/db?sslmode=verify-full&sslrootcert=/ca.pem   (also postgres://)
//   mariadb://user@host:port/db?ssl-mode=...   (also mysql://)
//   sqlite:PATH   (also sqlite://PATH)
//   jsonl:PATH    (JSON lines; jsonl:- is standard output)
// A password embedded in the URL (user:secret@host) is split off by
// parse_connection_url and returned separately so callers can store it as a secret.
#include <boost/system/result.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace datavor::connectors {

enum class db_kind { postgresql, mariadb, sqlite, jsonl };

std::string_view to_string(db_kind k);

struct connection_spec {
    db_kind kind = db_kind::postgresql;
    std::string user;
    std::string host;
    std::uint16_t port = 0;  // 0: the driver's default
    std::string database;
    std::string path;  // sqlite and jsonl
    std::map<std::string, std::string> params;  // query parameters, e.g. sslmode

    // The URL again, without any password: safe to store, log and return.
    std::string redacted_url() const;
    std::string param(const std::string& key, std::string fallback = {}) const;
};

struct parsed_url {
    connection_spec spec;
    std::optional<std::string> password;  // only when the URL carried one
};

enum class url_error {
    empty = 1,
    unknown_scheme,
    missing_host,
    bad_port,
    bad_escape,
    missing_path,
};

const boost::system::error_category& url_category();
inline boost::system::error_code make_error_code(url_error e) {
    return {static_cast<int>(e), url_category()};
}

// What to tell the user when parse_connection_url fails.
std::string describe(url_error e);

boost::system::result<parsed_url> parse_connection_url(std::string_view url);

}  // namespace datavor::connectors

template <>
struct boost::system::is_error_code_enum<datavor::connectors::url_error> : std::true_type {};
