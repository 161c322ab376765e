#include "engines/context/secret_store.hpp"

#include "engines/context/context_store.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace datavor::engines::context {
namespace {

rapidjson::Document load(const std::filesystem::path& p) {
    rapidjson::Document d;
    std::ifstream in(p);
    if (in) {
        std::stringstream ss;
        ss << in.rdbuf();
        d.Parse(ss.str().c_str());
    }
    if (d.HasParseError() || !d.IsObject()) d.SetObject();
    return d;
}

void store(const std::filesystem::path& p, const rapidjson::Document& d) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    d.Accept(w);
    auto tmp = p;
    tmp += ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot write " + tmp.string() + ": check the home folder's permissions");
    ::fchmod(fd, 0600);
    const char* data = buf.GetString();
    std::size_t left = buf.GetSize();
    while (left > 0) {
        auto n = ::write(fd, data, left);
        if (n <= 0) {
            ::close(fd);
            throw std::runtime_error("cannot write " + tmp.string() + ": disk full?");
        }
        data += n;
        left -= static_cast<std::size_t>(n);
    }
    ::fsync(fd);
    ::close(fd);
    std::filesystem::rename(tmp, p);
}

class category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "datavor.secret"; }
    std::string message(int ev) const override {
        switch (static_cast<secret_error>(ev)) {
            case secret_error::env_var_unset:
                return "the environment variable that holds this connection's password is not set in the "
                       "environment of the Datavor process";
            case secret_error::secret_missing:
                return "the secrets file has no password for this connection; add the connection again with its "
                       "password";
        }
        return "secret error";
    }
};

}  // namespace

const boost::system::error_category& secret_category() {
    static const category_impl cat;
    return cat;
}

secret_store::secret_store(std::filesystem::path home) : path_(std::move(home) / "secrets.json") {}

void secret_store::put(const std::string& key, const std::string& secret) {
    std::lock_guard lock(mu_);
    auto d = load(path_);
    d.RemoveMember(key.c_str());
    d.AddMember(rapidjson::Value(key.c_str(), d.GetAllocator()), rapidjson::Value(secret.c_str(), d.GetAllocator()),
                d.GetAllocator());
    store(path_, d);
}

std::optional<std::string> secret_store::get(const std::string& key) const {
    std::lock_guard lock(mu_);
    auto d = load(path_);
    auto it = d.FindMember(key.c_str());
    if (it == d.MemberEnd() || !it->value.IsString()) return std::nullopt;
    return std::string(it->value.GetString(), it->value.GetStringLength());
}

void secret_store::erase(const std::string& key) {
    std::lock_guard lock(mu_);
    if (!std::filesystem::exists(path_)) return;
    auto d = load(path_);
    if (d.RemoveMember(key.c_str())) store(path_, d);
}

boost::system::result<std::optional<std::string>> resolve_password(const connection_record& c,
                                                                   const secret_store& secrets) {
    if (c.secret_ref.starts_with("env:")) {
        const char* v = std::getenv(c.secret_ref.substr(4).c_str());
        if (!v) return secret_error::env_var_unset;
        return std::optional<std::string>(v);
    }
    if (c.secret_ref == "secrets_file") {
        auto v = secrets.get("connection:" + c.name);
        if (!v) return secret_error::secret_missing;
        return v;
    }
    return std::optional<std::string>{};
}

}  // namespace datavor::engines::context
