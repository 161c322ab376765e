#include "connectors/common/change.hpp"

#include "connectors/common/change_spool.hpp"

#include <charconv>
#include <cstdio>

namespace datavor::connectors {

bool transaction::empty() const { return changes.empty() && (!spooled || spooled->changes() == 0); }

std::uint64_t transaction::change_count() const { return changes.size() + (spooled ? spooled->changes() : 0); }

std::string lsn::to_string() const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(v >> 32), static_cast<unsigned>(v & 0xffffffffu));
    return buf;
}

std::optional<lsn> lsn::parse(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 >= text.size()) return std::nullopt;
    std::uint32_t hi = 0, lo = 0;
    auto a = std::from_chars(text.data(), text.data() + slash, hi, 16);
    auto b = std::from_chars(text.data() + slash + 1, text.data() + text.size(), lo, 16);
    if (a.ec != std::errc{} || a.ptr != text.data() + slash || b.ec != std::errc{} || b.ptr != text.data() + text.size())
        return std::nullopt;
    return lsn{(std::uint64_t(hi) << 32) | lo};
}

std::vector<std::size_t> table_schema::key_columns() const {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < columns.size(); ++i)
        if (columns[i].key) out.push_back(i);
    return out;
}

update_plan plan_update(const change_event& c, const std::vector<std::size_t>& keys) {
    update_plan p;
    if (c.before)
        for (auto k : keys)
            if (!(*c.before)[k].is_unchanged() && (*c.before)[k] != c.after[k]) p.key_changed = true;
    for (const auto& v : c.after) p.partial |= v.is_unchanged();
    p.after = c.after;
    if (!p.partial) return p;
    for (std::size_t i = 0; i < p.after.size(); ++i) {
        if (p.after[i].is_unchanged() && c.before && i < c.before->size() && !(*c.before)[i].is_unchanged())
            p.after[i] = (*c.before)[i];
        if (!p.after[i].is_unchanged()) p.columns.push_back(i);
    }
    return p;
}

}  // namespace datavor::connectors
