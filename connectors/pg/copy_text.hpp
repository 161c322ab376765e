#pragma once
// Parses one row of COPY … TO STDOUT in text format (the snapshot's wire
// format): columns separated by tabs, \N for NULL, backslash escapes
// (\b \f \n \r \t \v \\, \ooo octal, \xHH hex), a trailing newline.
// Sans-I/O; a malformed row is an error, never undefined behaviour.
#include "connectors/common/change.hpp"

#include <boost/system/result.hpp>

#include <string_view>

namespace datavor::connectors::pg {

enum class copy_text_error { column_count = 1, bad_escape };
const boost::system::error_category& copy_text_category();
inline boost::system::error_code make_error_code(copy_text_error e) { return {static_cast<int>(e), copy_text_category()}; }

// Fills `out` (resized to `columns`) from one line.
boost::system::result<void> parse_copy_text_row(std::string_view line, std::size_t columns, row& out);

}  // namespace datavor::connectors::pg

template <>
struct boost::system::is_error_code_enum<datavor::connectors::pg::copy_text_error> : std::true_type {};
