#include "server/mcp_session.hpp"

#include "server/jsonrpc.hpp"
#include "server/mcp_methods.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <map>
#include <set>

namespace asio = boost::asio;

namespace datavor::server {

bool is_supported_protocol_version(std::string_view v) {
    return v == "2025-11-25" || v == "2025-06-18" || v == "2025-03-26";
}

json_doc structured_result(json_doc structured, bool is_error) {
    json_doc r(rapidjson::kObjectType);
    auto& a = r.GetAllocator();
    json_value content(rapidjson::kArrayType), text(rapidjson::kObjectType);
    text.AddMember("type", "text", a);
    text.AddMember("text", str(to_json(structured), a), a);
    content.PushBack(text, a);
    r.AddMember("content", content, a);
    r.AddMember("structuredContent", json_value(structured, a), a);
    if (is_error) r.AddMember("isError", true, a);
    return r;
}

json_doc text_result(std::string_view message, bool is_error) {
    json_doc r(rapidjson::kObjectType);
    auto& a = r.GetAllocator();
    json_value content(rapidjson::kArrayType), text(rapidjson::kObjectType);
    text.AddMember("type", "text", a);
    text.AddMember("text", str(message, a), a);
    content.PushBack(text, a);
    r.AddMember("content", content, a);
    if (is_error) r.AddMember("isError", true, a);
    return r;
}

json_doc prompt_text_result(std::string_view description, std::string_view text) {
    json_doc r(rapidjson::kObjectType);
    auto& a = r.GetAllocator();
    r.AddMember("description", str(description, a), a);
    json_value msgs(rapidjson::kArrayType), m(rapidjson::kObjectType), content(rapidjson::kObjectType);
    content.AddMember("type", "text", a);
    content.AddMember("text", str(text, a), a);
    m.AddMember("role", "user", a);
    m.AddMember("content", content, a);
    msgs.PushBack(m, a);
    r.AddMember("messages", msgs, a);
    return r;
}

namespace {

class session_impl;

struct in_flight {
    asio::cancellation_signal signal;
    bool cancelled = false;
};

struct pending_ask {
    explicit pending_ask(const asio::any_io_executor& ex) : wake(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer wake;
    std::optional<json_doc> result;
    std::optional<std::string> error;
};

class context_impl final : public call_context {
public:
    context_impl(std::shared_ptr<session_impl> s, std::string request_id, std::string progress_token)
        : session_(std::move(s)), request_id_(std::move(request_id)), progress_token_(std::move(progress_token)) {}
    void progress(double value, std::optional<double> total, std::string message) override;
    bool wants_progress() const override { return !progress_token_.empty(); }
    void log(log_level level, std::string logger, std::string text) override;
    asio::awaitable<json_doc> ask_client(std::string method, json_doc params) override;
    const json_value* client_capabilities() const override;

private:
    std::weak_ptr<session_impl> session_;
    std::string request_id_;
    std::string progress_token_;  // JSON text; empty when none
};

class session_impl final : public mcp_session, public std::enable_shared_from_this<session_impl> {
public:
    session_impl(mcp_server& srv, asio::any_io_executor strand, std::shared_ptr<outbound> out, session_limits limits)
        : srv_(srv), strand_(std::move(strand)), out_(std::move(out)), limits_(limits),
          idle_(strand_, asio::steady_timer::time_point::max()) {}

    void receive(std::string text) override {
        asio::post(strand_, [self = shared_from_this(), text = std::move(text)]() mutable { self->on_message(text); });
    }

    void receive(jsonrpc::message m) override {
        asio::post(strand_, [self = shared_from_this(), m = std::move(m)]() mutable { self->dispatch(std::move(m)); });
    }

    asio::awaitable<void> stop(std::chrono::milliseconds grace) override {
        co_await asio::co_spawn(strand_, do_stop(shared_from_this(), grace), asio::use_awaitable);
    }

    void notify_resource_updated(const std::string& uri) override {
        asio::dispatch(strand_, [self = shared_from_this(), uri] {
            if (!self->subscriptions_.count(uri)) return;
            json_doc p(rapidjson::kObjectType);
            p.AddMember("uri", str(uri, p.GetAllocator()), p.GetAllocator());
            self->send(jsonrpc::make_notification("notifications/resources/updated", p), "", false);
        });
    }

    void notify_resource_list_changed() override {
        asio::dispatch(strand_, [self = shared_from_this()] {
            if (!self->initialized_) return;
            json_doc p(rapidjson::kObjectType);
            self->send(jsonrpc::make_notification("notifications/resources/list_changed", p), "", false);
        });
    }

    void notify_log(log_level level, std::string logger, std::string text) override {
        asio::dispatch(strand_, [self = shared_from_this(), level, logger = std::move(logger),
                                 text = std::move(text)]() mutable { self->emit_log(level, logger, text, ""); });
    }

    std::string protocol_version() const override {
        std::lock_guard lock(version_mu_);
        return version_;
    }

    // --- used by context_impl, on the strand ---
    void send(std::string msg, const std::string& related, bool final) {
        if (out_) out_->send(std::move(msg), related, final);
    }
    void emit_log(log_level level, const std::string& logger, const std::string& text, const std::string& related) {
        if (!log_level_ || level < *log_level_) return;
        json_doc p(rapidjson::kObjectType);
        auto& a = p.GetAllocator();
        p.AddMember("level", str(to_string(level), a), a);
        p.AddMember("logger", str(logger, a), a);
        p.AddMember("data", str(text, a), a);
        send(jsonrpc::make_notification("notifications/message", p), related, false);
    }
    asio::any_io_executor strand() const { return strand_; }
    const json_value* client_capabilities() const { return client_caps_.IsObject() ? &client_caps_ : nullptr; }
    std::shared_ptr<pending_ask> start_ask(const std::string& method, const json_doc& params, const std::string& related,
                                           std::string& id_out) {
        id_out = "\"datavor-" + std::to_string(next_ask_++) + "\"";
        auto p = std::make_shared<pending_ask>(strand_);
        asks_[id_out] = p;
        send(jsonrpc::make_request(id_out, method, params), related, false);
        return p;
    }
    void end_ask(const std::string& id) { asks_.erase(id); }

private:
    static asio::awaitable<void> do_stop(std::shared_ptr<session_impl> self, std::chrono::milliseconds grace) {
        self->stopping_ = true;
        if (!self->in_flight_.empty() && grace.count() > 0) {
            boost::system::error_code ec;
            self->idle_.expires_after(grace);
            co_await self->idle_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        for (auto& [id, f] : self->in_flight_) {
            f->cancelled = true;
            f->signal.emit(asio::cancellation_type::terminal);
        }
        for (auto& [id, a] : self->asks_) a->wake.cancel();
        while (!self->in_flight_.empty()) {
            boost::system::error_code ec;
            self->idle_.expires_at(asio::steady_timer::time_point::max());
            co_await self->idle_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
    }

    void reply(const std::string& id, method_reply r) {
        if (auto* e = std::get_if<rpc_error>(&r)) send(jsonrpc::make_error(id, e->code, e->message), id, true);
        else send(jsonrpc::make_result(id, std::get<json_doc>(r)), id, true);
    }
    void reply_error(const std::string& id, int code, const std::string& message) {
        send(jsonrpc::make_error(id, code, message), id, true);
    }

    void on_message(const std::string& text) {
        auto parsed = jsonrpc::parse(text);
        if (!parsed) {
            const auto& f = parsed.error();
            send(jsonrpc::make_error(f.id, f.code, f.message), f.id == "null" ? "" : f.id, true);
            return;
        }
        dispatch(std::move(*parsed));
    }

    void dispatch(jsonrpc::message m) {
        switch (m.k) {
            case jsonrpc::kind::response: return on_response(m);
            case jsonrpc::kind::notification: return on_notification(m);
            case jsonrpc::kind::request: return on_request(std::move(m));
        }
    }

    void on_response(const jsonrpc::message& m) {
        auto it = asks_.find(m.id);
        if (it == asks_.end()) return;  // late or unknown: nothing waits for it
        if (const json_value* r = member(m.doc, "result")) {
            it->second->result = clone(*r);
        } else {
            const json_value* e = member(m.doc, "error");
            auto msg = e ? string_member(*e, "message") : std::nullopt;
            it->second->error = std::string(msg.value_or("client returned an error"));
        }
        it->second->wake.cancel();
    }

    void on_notification(const jsonrpc::message& m) {
        if (m.method == "notifications/initialized") {
            initialized_ = true;
        } else if (m.method == "notifications/cancelled") {
            const json_value* p = m.params();
            const json_value* rid = p ? member(*p, "requestId") : nullptr;
            if (!rid) return;
            auto it = in_flight_.find(to_json(*rid));
            if (it == in_flight_.end()) return;  // unknown or already finished: ignore, as the spec says
            it->second->cancelled = true;
            it->second->signal.emit(asio::cancellation_type::terminal);
        }
        // Other notifications (roots/list_changed, progress from the client) need no action.
    }

    void on_request(jsonrpc::message m) {
        const std::string& id = m.id;
        if (in_flight_.count(id)) {
            // Do not relate the error to the running request: its response is still to come.
            send(jsonrpc::make_error(id, jsonrpc::invalid_request,
                                     "Invalid Request: duplicate request id " + id +
                                         ": a request with this id is still in progress; use a new id"),
                 "", false);
            return;
        }
        const json_value* params = m.params();
        if (m.method == "ping") return reply(id, json_doc(rapidjson::kObjectType));
        if (m.method == "initialize") return on_initialize(id, params);
        if (!initialize_done_)
            return reply_error(id, jsonrpc::invalid_request,
                               "Invalid Request: the session is not initialized; send initialize first");
        if (m.method == "tools/list") return reply(id, list_tools(srv_, params));
        if (m.method == "tools/call") return start_tool_call(std::move(m));
        if (m.method == "resources/list") return reply(id, list_resources(srv_, params));
        if (m.method == "resources/templates/list") return reply(id, list_resource_templates(srv_, params));
        if (m.method == "resources/read") return reply(id, read_resource(srv_, params));
        if (m.method == "resources/subscribe" || m.method == "resources/unsubscribe") {
            auto uri = params ? string_member(*params, "uri") : std::nullopt;
            if (!uri) return reply_error(id, jsonrpc::invalid_params, "Invalid params: needs \"uri\" (a string)");
            if (m.method == "resources/subscribe") subscriptions_.insert(std::string(*uri));
            else subscriptions_.erase(std::string(*uri));
            return reply(id, json_doc(rapidjson::kObjectType));
        }
        if (m.method == "prompts/list") return reply(id, list_prompts(srv_, params));
        if (m.method == "prompts/get") return reply(id, get_prompt(srv_, params));
        if (m.method == "completion/complete") return reply(id, complete(srv_, params));
        if (m.method == "logging/setLevel") {
            auto level = params ? string_member(*params, "level") : std::nullopt;
            auto parsed = level ? parse_log_level(*level) : std::nullopt;
            if (!parsed)
                return reply_error(id, jsonrpc::invalid_params,
                                   "Invalid params: level must be one of debug, info, notice, warning, error, "
                                   "critical, alert, emergency");
            log_level_ = parsed;
            return reply(id, json_doc(rapidjson::kObjectType));
        }
        reply_error(id, jsonrpc::method_not_found, "Method not found: " + m.method);
    }

    void on_initialize(const std::string& id, const json_value* params) {
        if (initialize_done_)
            return reply_error(id, jsonrpc::invalid_request, "Invalid Request: the session is already initialized");
        auto requested = params ? string_member(*params, "protocolVersion") : std::nullopt;
        if (!requested)
            return reply_error(id, jsonrpc::invalid_params, "Invalid params: initialize needs \"protocolVersion\"");
        std::string version = is_supported_protocol_version(*requested) ? std::string(*requested)
                                                                          : std::string(latest_protocol_version);
        if (const json_value* caps = member(*params, "capabilities")) client_caps_.CopyFrom(*caps, client_caps_.GetAllocator());
        {
            std::lock_guard lock(version_mu_);
            version_ = version;
        }
        initialize_done_ = true;
        json_doc r(rapidjson::kObjectType);
        auto& a = r.GetAllocator();
        r.AddMember("protocolVersion", str(version, a), a);
        json_value caps(rapidjson::kObjectType), tools(rapidjson::kObjectType), res(rapidjson::kObjectType),
            prompts(rapidjson::kObjectType);
        tools.AddMember("listChanged", false, a);
        res.AddMember("subscribe", true, a);
        res.AddMember("listChanged", true, a);
        prompts.AddMember("listChanged", false, a);
        caps.AddMember("tools", tools, a);
        caps.AddMember("resources", res, a);
        caps.AddMember("prompts", prompts, a);
        caps.AddMember("logging", json_value(rapidjson::kObjectType), a);
        caps.AddMember("completions", json_value(rapidjson::kObjectType), a);
        r.AddMember("capabilities", caps, a);
        json_value info(rapidjson::kObjectType);
        info.AddMember("name", str(srv_.info().name, a), a);
        info.AddMember("title", str(srv_.info().title, a), a);
        info.AddMember("version", str(srv_.info().version, a), a);
        r.AddMember("serverInfo", info, a);
        if (!srv_.info().instructions.empty()) r.AddMember("instructions", str(srv_.info().instructions, a), a);
        reply(id, std::move(r));
    }

    void start_tool_call(jsonrpc::message m) {
        const std::string id = m.id;
        const json_value* params = m.params();
        auto name = params ? string_member(*params, "name") : std::nullopt;
        if (!name) return reply_error(id, jsonrpc::invalid_params, "Invalid params: tools/call needs \"name\"");
        const tool_definition* tool = srv_.tools().find(*name);
        const tool_handler* handler = srv_.handler(*name);
        if (!tool || !handler)
            return reply_error(id, jsonrpc::invalid_params,
                               "Invalid params: unknown tool " + std::string(*name) + " (see tools/list)");
        static const json_value empty_object(rapidjson::kObjectType);
        const json_value* args = member(*params, "arguments");
        if (!args || args->IsNull()) args = &empty_object;
        if (auto problem = srv_.tools().validate(*tool, *args)) return reply(id, text_result(*problem, true));
        if (in_flight_.size() >= limits_.max_in_flight || stopping_)
            return reply(id, text_result("The server is busy with " + std::to_string(in_flight_.size()) +
                                             " running calls; retry when some have finished.",
                                         true));
        std::string token;
        if (const json_value* meta = member(*params, "_meta"))
            if (const json_value* t = member(*meta, "progressToken"); t && (t->IsString() || t->IsNumber()))
                token = to_json(*t);
        auto ctx = std::make_shared<context_impl>(shared_from_this(), id, token);
        auto flight = std::make_shared<in_flight>();
        in_flight_[id] = flight;
        asio::co_spawn(strand_, run_tool(*handler, clone(*args), ctx, std::string(*name)),
                       asio::bind_cancellation_slot(
                           flight->signal.slot(),
                           [self = shared_from_this(), id, flight](std::exception_ptr, json_doc result) {
                               self->finish(id, flight, std::move(result));
                           }));
    }

    // The dispatcher's catch: a handler failure becomes an isError result the model can read.
    static asio::awaitable<json_doc> run_tool(tool_handler handler, json_doc args, std::shared_ptr<call_context> ctx,
                                              std::string name) {
        try {
            co_return co_await handler(std::move(args), std::move(ctx));
        } catch (const std::exception& e) {
            co_return text_result("Tool " + name + " failed: " + e.what(), true);
        }
    }

    void finish(const std::string& id, const std::shared_ptr<in_flight>& flight, json_doc result) {
        in_flight_.erase(id);
        if (!flight->cancelled) {
            if (!result.IsObject()) result = text_result("Tool call ended without a result", true);
            send(jsonrpc::make_result(id, result), id, true);
        }
        if (in_flight_.empty()) idle_.cancel();
    }

    mcp_server& srv_;
    asio::any_io_executor strand_;
    std::shared_ptr<outbound> out_;
    session_limits limits_;
    asio::steady_timer idle_;
    bool initialize_done_ = false;
    bool initialized_ = false;
    bool stopping_ = false;
    mutable std::mutex version_mu_;
    std::string version_;
    json_doc client_caps_;
    std::optional<log_level> log_level_;
    std::set<std::string> subscriptions_;
    std::map<std::string, std::shared_ptr<in_flight>> in_flight_;
    std::map<std::string, std::shared_ptr<pending_ask>> asks_;
    std::uint64_t next_ask_ = 1;
};

void context_impl::progress(double value, std::optional<double> total, std::string message) {
    auto s = session_.lock();
    if (!s || progress_token_.empty()) return;
    json_doc p(rapidjson::kObjectType);
    auto& a = p.GetAllocator();
    json_doc token;
    token.Parse(progress_token_.c_str());
    p.AddMember("progressToken", json_value(token, a), a);
    p.AddMember("progress", value, a);
    if (total) p.AddMember("total", *total, a);
    if (!message.empty()) p.AddMember("message", str(message, a), a);
    asio::dispatch(s->strand(), [s, msg = jsonrpc::make_notification("notifications/progress", p), id = request_id_] {
        s->send(msg, id, false);
    });
}

void context_impl::log(log_level level, std::string logger, std::string text) {
    auto s = session_.lock();
    if (!s) return;
    asio::dispatch(s->strand(), [s, level, logger = std::move(logger), text = std::move(text), id = request_id_] {
        s->emit_log(level, logger, text, id);
    });
}

const json_value* context_impl::client_capabilities() const {
    auto s = session_.lock();
    return s ? s->client_capabilities() : nullptr;
}

asio::awaitable<json_doc> context_impl::ask_client(std::string method, json_doc params) {
    auto s = session_.lock();
    if (!s) throw std::runtime_error("session closed");
    std::string id;
    auto pending = s->start_ask(method, params, request_id_, id);
    boost::system::error_code ec;
    co_await pending->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    s->end_ask(id);
    if (pending->result) co_return std::move(*pending->result);
    if (pending->error) throw std::runtime_error("client answered " + method + " with an error: " + *pending->error);
    throw boost::system::system_error(asio::error::operation_aborted, "cancelled while waiting for the client");
}

}  // namespace

std::shared_ptr<mcp_session> make_session(mcp_server& server, asio::any_io_executor strand,
                                          std::shared_ptr<outbound> out, session_limits limits) {
    auto s = std::make_shared<session_impl>(server, std::move(strand), std::move(out), limits);
    server.attach(s);
    return s;
}

}  // namespace datavor::server
