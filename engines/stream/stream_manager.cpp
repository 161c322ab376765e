#include "engines/stream/stream_manager.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>

namespace asio = boost::asio;

namespace datavor::engines::stream {

struct stream_manager::entry {
    std::string name;
    asio::strand<asio::any_io_executor> strand;
    std::unique_ptr<stream_runner> runner;
    asio::cancellation_signal signal;    // used on `strand` only
    std::atomic<bool> done{false};
    std::string state_after_stop;        // set before cancelling; guarded by the manager's mutex
    explicit entry(asio::any_io_executor ex) : strand(asio::make_strand(ex)) {}
};

stream_manager::stream_manager(asio::any_io_executor ex, context::context_store& ctx, factory make, stream_log log,
                               on_change changed)
    : ex_(std::move(ex)), ctx_(ctx), make_(std::move(make)), log_(std::move(log)), changed_(std::move(changed)) {}

stream_manager::~stream_manager() = default;

// Tells subscribers (resources/updated) every two seconds while the stream
// runs, so a client following datavor://streams/{name} sees its progress.
asio::awaitable<void> stream_manager::tick(std::shared_ptr<entry> e) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    while (!e->done) {
        t.expires_after(std::chrono::seconds(2));
        co_await t.async_wait(asio::use_awaitable);
        if (!e->done && changed_) changed_(e->name);
    }
}

void stream_manager::launch(const std::shared_ptr<entry>& e) {
    asio::co_spawn(e->strand, tick(e), asio::detached);
    asio::co_spawn(e->strand, e->runner->run(),
                   asio::bind_cancellation_slot(e->signal.slot(), [this, e](std::exception_ptr failure) {
                       std::string state, error;
                       {
                           std::lock_guard lock(mu_);
                           state = e->state_after_stop;
                       }
                       if (failure) {
                           try {
                               std::rethrow_exception(failure);
                           } catch (const std::exception& x) {
                               error = x.what();
                           }
                           if (state.empty()) state = "failed";
                       }
                       // A stream that ended by itself (snapshot only) is stopped.
                       if (state.empty()) state = "stopped";
                       // On shutdown the saved state stays "running" so the stream resumes.
                       if (state != "running") record_state(e->name, state, error);
                       e->done = true;
                       if (changed_) changed_(e->name);
                   }));
}

// A state change that context.db cannot take now (locked by another process,
// disk full) must neither crash the server (this runs in a completion handler)
// nor be forgotten: it is retried every 2 s until written or superseded.
void stream_manager::record_state(const std::string& name, const std::string& state, const std::string& error) {
    std::uint64_t generation;
    {
        std::lock_guard lock(mu_);
        generation = ++state_generation_[name];
    }
    try {
        ctx_.set_stream_state(name, state, error);
        return;
    } catch (const std::exception& x) {
        log_("error", "stream " + name + ": cannot record its state (" + state + ") in context.db: " + x.what() +
                          "; retrying every 2 s (free the disk or end the other process holding context.db)");
    }
    asio::co_spawn(
        ex_,
        [this, name, state, error, generation]() -> asio::awaitable<void> {
            asio::steady_timer t(ex_);
            for (;;) {
                t.expires_after(std::chrono::seconds(2));
                co_await t.async_wait(asio::use_awaitable);
                {
                    std::lock_guard lock(mu_);
                    if (state_generation_[name] != generation) co_return;  // a newer state took over
                }
                try {
                    ctx_.set_stream_state(name, state, error);
                    log_("info", "stream " + name + ": state " + state + " recorded in context.db");
                    co_return;
                } catch (const std::exception&) {
                }
            }
        },
        asio::detached);
}

void stream_manager::start(context::stream_record rec, bool start_over) {
    auto e = std::make_shared<entry>(ex_);
    e->name = rec.name;
    e->runner = make_(rec);  // throws invalid_argument before anything is saved
    if (start_over) e->runner->start_over();
    rec.state = "running";
    rec.last_error.clear();
    ctx_.put_stream(rec);
    {
        std::lock_guard lock(mu_);
        streams_[rec.name] = e;
    }
    launch(e);
    if (changed_) changed_(rec.name);
}

asio::awaitable<void> stream_manager::wait_done(std::shared_ptr<entry> e) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    for (int i = 0; i < 3000 && !e->done; ++i) {  // closing is quick; 60 s bounds a stuck close
        t.expires_after(std::chrono::milliseconds(20));
        co_await t.async_wait(asio::use_awaitable);
    }
}

asio::awaitable<bool> stream_manager::stop(std::string name, std::string new_state) {
    std::shared_ptr<entry> e;
    {
        std::lock_guard lock(mu_);
        auto it = streams_.find(name);
        if (it == streams_.end() || it->second->done) {
            if (ctx_.find_stream(name)) ctx_.set_stream_state(name, new_state);  // throws: the caller says why
            co_return false;
        }
        e = it->second;
    }
    // Recorded before the stream stops: when context.db cannot take it, the
    // stream keeps running and the caller hears why (a stop that is not
    // recorded would come back to life at the next start).
    if (new_state != "running") {
        {
            std::lock_guard lock(mu_);
            ++state_generation_[name];
        }
        try {
            ctx_.set_stream_state(name, new_state);
        } catch (const std::exception& x) {
            throw std::runtime_error("cannot record that stream " + name + " is " + new_state + " in context.db (" +
                                     x.what() + "): the stream keeps running; free the disk or end the other process "
                                     "holding context.db, then try again");
        }
    }
    {
        std::lock_guard lock(mu_);
        e->state_after_stop = new_state;
    }
    asio::post(e->strand, [e] { e->signal.emit(asio::cancellation_type::terminal); });
    co_await wait_done(e);
    co_return true;
}

bool stream_manager::running(const std::string& name) const {
    std::lock_guard lock(mu_);
    auto it = streams_.find(name);
    return it != streams_.end() && !it->second->done;
}

std::optional<stream_status> stream_manager::status(const std::string& name) const {
    std::lock_guard lock(mu_);
    auto it = streams_.find(name);
    if (it == streams_.end()) return std::nullopt;
    return it->second->runner->status();
}

std::string stream_manager::resnapshot(const std::string& name, const std::string& table) {
    std::lock_guard lock(mu_);
    auto it = streams_.find(name);
    if (it == streams_.end() || it->second->done) return "stream " + name + " is not running; resume_stream it first";
    return it->second->runner->request_resnapshot(table);
}

std::shared_ptr<const retry_outcome> stream_manager::retry(const std::string& name, std::vector<std::int64_t> seqs) {
    std::lock_guard lock(mu_);
    auto it = streams_.find(name);
    if (it == streams_.end() || it->second->done) return nullptr;
    return it->second->runner->request_retry(std::move(seqs));
}

std::optional<retry_outcome> stream_manager::retry_state(const std::string& name,
                                                         const std::shared_ptr<const retry_outcome>& h) const {
    std::lock_guard lock(mu_);
    auto it = streams_.find(name);
    if (it == streams_.end()) return std::nullopt;
    return it->second->runner->outcome(h);
}

void stream_manager::reload_rules(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = streams_.find(name);
    if (it != streams_.end() && !it->second->done) it->second->runner->request_reload_rules();
}

std::optional<std::vector<connectors::change_event>> stream_manager::recent_changes(const std::string& name,
                                                                                    const std::string& table) const {
    std::lock_guard lock(mu_);
    auto it = streams_.find(name);
    if (it == streams_.end() || it->second->done) return std::nullopt;
    return it->second->runner->recent_changes(table);
}

void stream_manager::apply_suggestions(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = streams_.find(name);
    if (it != streams_.end() && !it->second->done) it->second->runner->request_apply_suggestions();
}

void stream_manager::reload_holds(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = streams_.find(name);
    if (it != streams_.end() && !it->second->done) it->second->runner->request_reload_holds();
}

void stream_manager::resume_saved() {
    for (const auto& rec : ctx_.list_streams()) {
        if (rec.state != "running") continue;
        try {
            start(rec);
            log_("info", "stream " + rec.name + " resumed");
        } catch (const std::invalid_argument& x) {
            record_state(rec.name, "failed", x.what());
            log_("error", "stream " + rec.name + " cannot resume: " + x.what());
        }
    }
}

asio::awaitable<void> stream_manager::shutdown() {
    std::vector<std::string> names;
    {
        std::lock_guard lock(mu_);
        for (const auto& [name, e] : streams_)
            if (!e->done) names.push_back(name);
    }
    for (const auto& n : names) co_await stop(n, "running");
}

}  // namespace datavor::engines::stream
