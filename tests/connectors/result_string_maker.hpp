#pragma once
// Lets Catch print a boost::system::result in a failed assertion: "value" or
// the error's category and message (boost's own operator<< needs T to be printable).
#include <catch2/catch.hpp>

#include <boost/system/result.hpp>

#include <string>

namespace Catch {
template <class T, class E>
struct StringMaker<boost::system::result<T, E>> {
    static std::string convert(const boost::system::result<T, E>& r) {
        if (r.has_value()) return "result(value)";
        if constexpr (std::is_same_v<E, boost::system::error_code>)
            return "result(error " + std::string(r.error().category().name()) + ":" + std::to_string(r.error().value()) +
                   " \"" + r.error().message() + "\")";
        else
            return "result(error)";
    }
};
}  // namespace Catch
