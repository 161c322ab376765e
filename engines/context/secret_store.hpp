#pragma once
// Passwords live here, never in context.db: a JSON file `secrets` in the home
// folder, mode 0600, rewritten atomically (temp file + rename). Values are
// never logged or returned by any tool.
//
// Thread safety: internal mutex; each call reads or rewrites the whole (small) file.
#include <boost/system/result.hpp>

#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

namespace datavor::engines::context {

class secret_store {
public:
    explicit secret_store(std::filesystem::path home);
    void put(const std::string& key, const std::string& secret);
    std::optional<std::string> get(const std::string& key) const;
    void erase(const std::string& key);
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
    mutable std::mutex mu_;
};

struct connection_record;

enum class secret_error { env_var_unset = 1, secret_missing };
const boost::system::error_category& secret_category();
inline boost::system::error_code make_error_code(secret_error e) { return {static_cast<int>(e), secret_category()}; }

// The password for a connection according to its secret_ref: nullopt when the
// driver should find it itself (pgpass, none). An error says what to set.
boost::system::result<std::optional<std::string>> resolve_password(const connection_record& c,
                                                                   const secret_store& secrets);

}  // namespace datavor::engines::context

template <>
struct boost::system::is_error_code_enum<datavor::engines::context::secret_error> : std::true_type {};
