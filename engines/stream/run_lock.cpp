#include "engines/stream/run_lock.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace datavor::engines::stream {

namespace {
std::filesystem::path lock_file(const std::filesystem::path& dir, const std::string& stream) {
    std::string safe;
    for (char c : stream) safe.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ? c : '_');
    return dir / (safe + ".lock");
}

long pid_in(int fd) {
    char buf[32] = {};
    const auto n = ::pread(fd, buf, sizeof buf - 1, 0);
    return n > 0 ? std::strtol(buf, nullptr, 10) : 0;
}

int open_lock(const std::filesystem::path& dir, const std::string& stream) {
    std::filesystem::create_directories(dir);
    const auto file = lock_file(dir, stream);
    const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        throw std::runtime_error("cannot open " + file.string() + ": " + std::strerror(errno) +
                                 " (check the home folder's permissions)");
    return fd;
}

std::string busy_message(const std::string& stream, long pid) {
    return "stream " + stream + " is already running in another Datavor process" +
           (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string()) +
           " on this home: use it there (for failed rows: the retry_failed tool of that datavor serve), or stop it first";
}
}  // namespace

run_lock::run_lock(const std::filesystem::path& dir, const std::string& stream) : fd_(open_lock(dir, stream)) {
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const long pid = pid_in(fd_);
        ::close(fd_);
        fd_ = -1;
        throw std::runtime_error(busy_message(stream, pid));
    }
    const std::string me = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) < 0) {
        // The pid only improves a message; the lock itself holds.
    }
}

run_lock::~run_lock() {
    if (fd_ >= 0) ::close(fd_);  // releases the flock
}

std::optional<long> run_lock::holder(const std::filesystem::path& dir, const std::string& stream) {
    const int fd = open_lock(dir, stream);
    std::optional<long> out;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) out = pid_in(fd);
    else ::flock(fd, LOCK_UN);
    ::close(fd);
    return out;
}

}  // namespace datavor::engines::stream
