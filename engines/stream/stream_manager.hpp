#pragma once
// The streams of one Datavor process: starts, stops, pauses and resumes them,
// keeps each one's saved definition and state in context.db, and resumes the
// running ones when the process starts again.
//
// Threads: each stream runs on its own strand (its runner is the supervisor
// of everything it awaits). The registry below is shared by the MCP sessions'
// strands and the streams' completion handlers: a mutex guards it, and a
// stream's cancellation signal is only ever emitted on that stream's strand.
// Cancellation: stop() emits terminal cancellation and waits (bounded) until
// the runner has closed its source and sink.
#include "engines/context/context_store.hpp"
#include "engines/stream/stream_runner.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>

namespace datavor::engines::stream {

class stream_manager {
public:
    // Builds a runner for a saved stream; throws std::invalid_argument saying what to fix.
    using factory = std::function<std::unique_ptr<stream_runner>(const context::stream_record&)>;
    // Called (from any strand) whenever a stream's state changes.
    using on_change = std::function<void(const std::string& stream)>;

    stream_manager(boost::asio::any_io_executor ex, context::context_store& ctx, factory make, stream_log log,
                   on_change changed);
    ~stream_manager();

    // Set before any stream starts.
    void set_on_change(on_change changed) { changed_ = std::move(changed); }
    // Saves the stream as running and starts it in the background;
    // `start_over`: a new slot and a copy of every table instead of resuming.
    void start(context::stream_record rec, bool start_over = false);
    // Stops a running stream and saves `new_state` (stopped, paused); false when it was not running.
    boost::asio::awaitable<bool> stop(std::string name, std::string new_state);
    bool running(const std::string& name) const;
    std::optional<stream_status> status(const std::string& name) const;
    // Queues a re-snapshot of one table of a running stream: "" when queued, or why not.
    std::string resnapshot(const std::string& name, const std::string& table);
    // Failed rows (issue 4): a retry queued on a running stream (nullptr:
    // not running), its outcome so far, and held keys reloaded after a dismissal.
    std::shared_ptr<const retry_outcome> retry(const std::string& name, std::vector<std::int64_t> seqs);
    std::optional<retry_outcome> retry_state(const std::string& name, const std::shared_ptr<const retry_outcome>& h) const;
    void reload_holds(const std::string& name);
    // A running stream picks up its saved rules again between two batches.
    void reload_rules(const std::string& name);
    // A running stream's latest source changes of a table; nullopt when it is not running here.
    std::optional<std::vector<connectors::change_event>> recent_changes(const std::string& name, const std::string& table) const;
    // A running stream reloads its rules and carries out accepted suggestions between two batches.
    void apply_suggestions(const std::string& name);
    // Starts every saved stream whose state is running (process start).
    void resume_saved();
    // Stops every stream, keeping their saved state so they resume next time.
    boost::asio::awaitable<void> shutdown();

private:
    struct entry;
    void launch(const std::shared_ptr<entry>& e);
    boost::asio::awaitable<void> wait_done(std::shared_ptr<entry> e);
    boost::asio::awaitable<void> tick(std::shared_ptr<entry> e);
    void record_state(const std::string& name, const std::string& state, const std::string& error);

    boost::asio::any_io_executor ex_;
    context::context_store& ctx_;
    factory make_;
    stream_log log_;
    on_change changed_;
    mutable std::mutex mu_;
    std::map<std::string, std::shared_ptr<entry>> streams_;
    std::map<std::string, std::uint64_t> state_generation_;  // guarded by mu_
};

}  // namespace datavor::engines::stream
