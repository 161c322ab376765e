#include "engines/rules/cast.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

namespace datavor::engines::rules {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

bool digits(std::string_view s, std::size_t n) {
    return s.size() >= n && std::all_of(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n),
                                        [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

int number(std::string_view s) {
    int v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

// YYYY-MM-DD with a real day of a real month.
bool valid_date(std::string_view s) {
    if (s.size() != 10 || !digits(s, 4) || s[4] != '-' || !digits(s.substr(5), 2) || s[7] != '-' || !digits(s.substr(8), 2))
        return false;
    const int y = number(s.substr(0, 4)), m = number(s.substr(5, 2)), d = number(s.substr(8, 2));
    if (y < 1) return false;  // PostgreSQL has no year 0
    static constexpr int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1 || d > days[m - 1]) return false;
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(m == 2 && d == 29 && !leap);
}

// HH:MM[:SS[.ffffff]] then an optional zone (Z, ±HH[:MM]).
bool valid_time(std::string_view s, bool zone_allowed) {
    if (s.size() < 5 || !digits(s, 2) || s[2] != ':' || !digits(s.substr(3), 2)) return false;
    if (number(s.substr(0, 2)) > 23 || number(s.substr(3, 2)) > 59) return false;
    s.remove_prefix(5);
    if (!s.empty() && s[0] == ':') {
        if (!digits(s.substr(1), 2) || number(s.substr(1, 2)) > 60) return false;
        s.remove_prefix(3);
        if (!s.empty() && s[0] == '.') {
            std::size_t n = 1;
            while (n < s.size() && std::isdigit(static_cast<unsigned char>(s[n]))) ++n;
            if (n == 1 || n > 7) return false;
            s.remove_prefix(n);
        }
    }
    if (s.empty()) return true;
    if (!zone_allowed) return false;
    if (s == "Z" || s == "z") return true;
    if (s[0] != '+' && s[0] != '-') return false;
    s.remove_prefix(1);
    if (!digits(s, 2) || number(s.substr(0, 2)) > 15) return false;  // PostgreSQL: at most 15:59
    s.remove_prefix(2);
    if (s.empty()) return true;
    if (s[0] == ':') s.remove_prefix(1);
    return s.size() == 2 && digits(s, 2) && number(s) <= 59;
}

bool valid_numeric(std::string_view s) {
    if (s == "NaN") return true;
    std::size_t i = 0;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    std::size_t before = 0, after = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++before;
    if (i < s.size() && s[i] == '.') {
        ++i;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++after;
    }
    if (before + after == 0) return false;
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
        std::size_t e = 0;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++e;
        if (e == 0) return false;
    }
    return i == s.size();
}

}  // namespace

std::optional<cast_type> cast_type_of(std::string_view name) {
    const auto n = lower(trim(name));
    if (n == "integer" || n == "int" || n == "int4") return cast_type{23, "integer"};
    if (n == "bigint" || n == "int8") return cast_type{20, "bigint"};
    if (n == "smallint" || n == "int2") return cast_type{21, "smallint"};
    if (n == "numeric" || n == "decimal") return cast_type{1700, "numeric"};
    if (n == "double" || n == "double precision" || n == "float8" || n == "float") return cast_type{701, "double precision"};
    if (n == "real" || n == "float4") return cast_type{700, "real"};
    if (n == "text" || n == "string" || n == "varchar") return cast_type{25, "text"};
    if (n == "boolean" || n == "bool") return cast_type{16, "boolean"};
    if (n == "date") return cast_type{1082, "date"};
    if (n == "timestamp") return cast_type{1114, "timestamp without time zone"};
    if (n == "timestamptz") return cast_type{1184, "timestamp with time zone"};
    return std::nullopt;
}

std::optional<std::string> cast_text(std::string_view value, const cast_type& to) {
    const auto v = trim(value);
    switch (to.oid) {
    case 20: case 21: case 23: {
        std::int64_t i = 0;
        if (v.size() > 1 && v[0] == '+' && !std::isdigit(static_cast<unsigned char>(v[1]))) return std::nullopt;
        const char* b = v.data() + (!v.empty() && v[0] == '+');
        auto [p, ec] = std::from_chars(b, v.data() + v.size(), i);
        if (ec != std::errc() || p != v.data() + v.size() || b == v.data() + v.size()) return std::nullopt;
        const std::int64_t lo = to.oid == 21 ? -32768 : to.oid == 23 ? std::numeric_limits<std::int32_t>::min() : std::numeric_limits<std::int64_t>::min();
        const std::int64_t hi = to.oid == 21 ? 32767 : to.oid == 23 ? std::numeric_limits<std::int32_t>::max() : std::numeric_limits<std::int64_t>::max();
        if (i < lo || i > hi) return std::nullopt;
        return std::to_string(i);
    }
    case 1700:
        return valid_numeric(v) ? std::optional<std::string>(std::string(v)) : std::nullopt;
    case 700: case 701: {
        double d = 0;
        if (v.size() > 1 && v[0] == '+' && (v[1] == '-' || v[1] == '+')) return std::nullopt;
        const char* b = v.data() + (!v.empty() && v[0] == '+');
        auto [p, ec] = std::from_chars(b, v.data() + v.size(), d);
        if (ec != std::errc() || p != v.data() + v.size() || b == v.data() + v.size()) return std::nullopt;
        if (to.oid == 700 && std::isfinite(d)) {  // real: what a float cannot hold is out of range
            const auto f = static_cast<float>(d);
            if (std::isinf(f) || (f == 0.0f && d != 0.0)) return std::nullopt;
        }
        return std::string(v);
    }
    case 16: {
        const auto l = lower(v);
        if (l == "t" || l == "true" || l == "yes" || l == "y" || l == "on" || l == "1") return std::string("t");
        if (l == "f" || l == "false" || l == "no" || l == "n" || l == "off" || l == "0") return std::string("f");
        return std::nullopt;
    }
    case 1082:
        return valid_date(v) ? std::optional<std::string>(std::string(v)) : std::nullopt;
    case 1114: case 1184: {
        if (v.size() < 16 || !valid_date(v.substr(0, 10)) || (v[10] != ' ' && v[10] != 'T' && v[10] != 't')) return std::nullopt;
        if (!valid_time(v.substr(11), to.oid == 1184)) return std::nullopt;
        std::string out(v);
        out[10] = ' ';
        return out;
    }
    default:
        return std::string(value);
    }
}

}  // namespace datavor::engines::rules
