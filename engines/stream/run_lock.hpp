#pragma once
// One process runs a stream at a time: `datavor serve`, `stream run` and
// `ledger retry` on the same home take this lock before the stream touches
// its source, target or ledger. A second runner would fight over the slot
// and write a ledger about work it did not do.
//
// An flock(2) on HOME/run/<stream>.lock, released when the holder exits
// (also on kill -9); the file keeps the holder's pid for the message.
#include <filesystem>
#include <optional>
#include <string>

namespace datavor::engines::stream {

class run_lock {
public:
    // Takes the lock or throws std::runtime_error naming the process that holds it.
    run_lock(const std::filesystem::path& dir, const std::string& stream);
    ~run_lock();
    run_lock(const run_lock&) = delete;
    run_lock& operator=(const run_lock&) = delete;

    // The pid of the process holding the stream's lock, if one does (0 when unknown).
    static std::optional<long> holder(const std::filesystem::path& dir, const std::string& stream);

private:
    int fd_ = -1;
};

}  // namespace datavor::engines::stream
