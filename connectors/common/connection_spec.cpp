#include "connectors/common/connection_spec.hpp"

#include <cctype>
#include <charconv>

namespace datavor::connectors {
namespace {

class url_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "datavor.url"; }
    std::string message(int ev) const override { return describe(static_cast<url_error>(ev)); }
};

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

boost::system::result<std::string> percent_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out.push_back(in[i]);
            continue;
        }
        if (i + 2 >= in.size()) return url_error::bad_escape;
        int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) return url_error::bad_escape;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

std::string percent_encode(std::string_view in) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : in) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

}  // namespace

std::string_view to_string(db_kind k) {
    switch (k) {
        case db_kind::postgresql: return "postgresql";
        case db_kind::mariadb: return "mariadb";
        case db_kind::sqlite: return "sqlite";
        case db_kind::jsonl: return "jsonl";
    }
    return "unknown";
}

const boost::system::error_category& url_category() {
    static const url_category_impl cat;
    return cat;
}

std::string describe(url_error e) {
    switch (e) {
        case url_error::empty: return "the URL is empty";
        case url_error::unknown_scheme:
            return "unknown scheme: use postgresql://user@host:port/db, mariadb://user@host:port/db, "
                   "mysql://user@host:port/db, sqlite:PATH or jsonl:PATH (jsonl:- for standard output)";
        case url_error::missing_host: return "the URL names no host: write user@host[:port]/database";
        case url_error::bad_port: return "the port is not a number between 1 and 65535";
        case url_error::bad_escape: return "a %-escape in the URL is malformed (write %XX with two hex digits)";
        case url_error::missing_path: return "a sqlite URL needs a file path: sqlite:/path/to/file.db";
    }
    return "invalid URL";
}

std::string connection_spec::param(const std::string& key, std::string fallback) const {
    auto it = params.find(key);
    return it == params.end() ? fallback : it->second;
}

std::string connection_spec::redacted_url() const {
    if (kind == db_kind::sqlite) return "sqlite:" + path;
    if (kind == db_kind::jsonl) return "jsonl:" + path;
    std::string out(to_string(kind));
    out += "://";
    if (!user.empty()) out += percent_encode(user) + "@";
    bool v6 = host.find(':') != std::string::npos;
    out += v6 ? "[" + host + "]" : host;
    if (port != 0) out += ":" + std::to_string(port);
    out += "/" + percent_encode(database);
    char sep = '?';
    for (const auto& [k, v] : params) {
        out += sep + percent_encode(k) + "=" + percent_encode(v);
        sep = '&';
    }
    return out;
}

boost::system::result<parsed_url> parse_connection_url(std::string_view url) {
    if (url.empty()) return url_error::empty;
    parsed_url out;
    auto& spec = out.spec;

    auto starts = [&](std::string_view p) { return url.substr(0, p.size()) == p; };
    if (starts("jsonl:")) {
        spec.kind = db_kind::jsonl;
        auto rest = url.substr(6);
        if (rest.substr(0, 2) == "//") rest.remove_prefix(2);
        if (rest.empty()) return url_error::missing_path;
        spec.path = std::string(rest);
        return out;
    }
    if (starts("sqlite:")) {
        spec.kind = db_kind::sqlite;
        auto rest = url.substr(7);
        if (rest.substr(0, 2) == "//") rest.remove_prefix(2);
        if (rest.empty()) return url_error::missing_path;
        spec.path = std::string(rest);
        return out;
    }
    std::string_view rest;
    if (starts("postgresql://")) {
        rest = url.substr(13);
    } else if (starts("postgres://")) {
        rest = url.substr(11);
    } else if (starts("mariadb://")) {
        spec.kind = db_kind::mariadb;
        rest = url.substr(10);
    } else if (starts("mysql://")) {
        spec.kind = db_kind::mariadb;
        rest = url.substr(8);
    } else {
        return url_error::unknown_scheme;
    }

    std::string_view query;
    if (auto q = rest.find('?'); q != std::string_view::npos) {
        query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }
    std::string_view authority = rest, path;
    if (auto s = rest.find('/'); s != std::string_view::npos) {
        authority = rest.substr(0, s);
        path = rest.substr(s + 1);
    }
    // The password may contain '@', so the last '@' ends the user info.
    if (auto at = authority.rfind('@'); at != std::string_view::npos) {
        auto userinfo = authority.substr(0, at);
        authority = authority.substr(at + 1);
        auto colon = userinfo.find(':');
        auto user = percent_decode(userinfo.substr(0, colon));
        if (!user) return user.error();
        spec.user = std::move(*user);
        if (colon != std::string_view::npos) {
            auto pw = percent_decode(userinfo.substr(colon + 1));
            if (!pw) return pw.error();
            out.password = std::move(*pw);
        }
    }
    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return url_error::missing_host;
        spec.host = std::string(authority.substr(1, close - 1));
        auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return url_error::bad_port;
            port_text = after.substr(1);
        }
    } else {
        auto colon = authority.rfind(':');
        spec.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
    }
    if (spec.host.empty()) return url_error::missing_host;
    if (!port_text.empty()) {
        unsigned v = 0;
        auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
        if (ec != std::errc{} || p != port_text.data() + port_text.size() || v == 0 || v > 65535)
            return url_error::bad_port;
        spec.port = static_cast<std::uint16_t>(v);
    }
    auto db = percent_decode(path);
    if (!db) return db.error();
    spec.database = std::move(*db);

    while (!query.empty()) {
        auto amp = query.find('&');
        auto pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        auto k = percent_decode(pair.substr(0, eq));
        auto v = percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
        if (!k) return k.error();
        if (!v) return v.error();
        if (*k == "password") {  // never keep a password that came as a parameter
            out.password = std::move(*v);
            continue;
        }
        spec.params[std::move(*k)] = std::move(*v);
    }
    return out;
}

}  // namespace datavor::connectors
