#include "connectors/pg/copy_text.hpp"

namespace datavor::connectors::pg {
namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "datavor.pg.copy_text"; }
    std::string message(int ev) const override {
        return static_cast<copy_text_error>(ev) == copy_text_error::column_count
                   ? "COPY row has a different number of columns than the table"
                   : "COPY row has a malformed backslash escape";
    }
};

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

const boost::system::error_category& copy_text_category() {
    static const category c;
    return c;
}

boost::system::result<void> parse_copy_text_row(std::string_view line, std::size_t columns, row& out) {
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    out.resize(columns);
    std::size_t col = 0, i = 0;
    for (;;) {
        if (col >= columns) return copy_text_error::column_count;
        auto end = line.find('\t', i);
        std::string_view field = line.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
        value& v = out[col];
        if (field == "\\N") {
            v = value::null_value();
        } else {
            v.st = value::state::text;
            v.data.clear();
            v.data.reserve(field.size());
            for (std::size_t k = 0; k < field.size(); ++k) {
                char c = field[k];
                if (c != '\\') {
                    v.data.push_back(c);
                    continue;
                }
                if (++k >= field.size()) return copy_text_error::bad_escape;
                char e = field[k];
                switch (e) {
                    case 'b': v.data.push_back('\b'); break;
                    case 'f': v.data.push_back('\f'); break;
                    case 'n': v.data.push_back('\n'); break;
                    case 'r': v.data.push_back('\r'); break;
                    case 't': v.data.push_back('\t'); break;
                    case 'v': v.data.push_back('\v'); break;
                    case 'x': {
                        int h1 = k + 1 < field.size() ? hexval(field[k + 1]) : -1;
                        if (h1 < 0) return copy_text_error::bad_escape;
                        int h2 = k + 2 < field.size() ? hexval(field[k + 2]) : -1;
                        int val = h1;
                        ++k;
                        if (h2 >= 0) {
                            val = h1 * 16 + h2;
                            ++k;
                        }
                        v.data.push_back(static_cast<char>(val));
                        break;
                    }
                    default:
                        if (e >= '0' && e <= '7') {
                            int val = e - '0';
                            for (int d = 0; d < 2 && k + 1 < field.size() && field[k + 1] >= '0' && field[k + 1] <= '7'; ++d)
                                val = val * 8 + (field[++k] - '0');
                            v.data.push_back(static_cast<char>(val));
                        } else {
                            v.data.push_back(e);  // \\ and any other escaped character stand for themselves
                        }
                }
            }
        }
        ++col;
        if (end == std::string_view::npos) break;
        i = end + 1;
    }
    if (col != columns) return copy_text_error::column_count;
    return {};
}

}  // namespace datavor::connectors::pg
