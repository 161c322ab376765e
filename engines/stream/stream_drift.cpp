// The stream runner's side of the Suggestion Engine (engines/suggest): a
// pending new column is withheld from the target by the rules, and its
// values are kept aside by row key in context.db, written before the batch
// that carries them commits (a crash replays the batch and keeps them again:
// the same key gets the same value). Once accepted, between two batches, the
// column is added and every kept value written over its row in one target
// transaction (with the stream's position, unchanged); an accepted type
// change alters the target column and retries the rows set aside.
#include "connectors/common/connector_error.hpp"
#include "engines/context/context_store.hpp"
#include "engines/ledger/ledger.hpp"
#include "engines/stream/row_json.hpp"
#include "engines/stream/stream_runner.hpp"
#include "engines/suggest/suggest_engine.hpp"

#include <algorithm>

namespace asio = boost::asio;
using namespace datavor::connectors;

namespace datavor::engines::stream {

void stream_runner::keep_withheld(const change_event& c, const rules::table_rules& compiled) {
    if (!settings_.suggest || c.after.empty()) return;
    if (c.op != change_op::insert && c.op != change_op::update && c.op != change_op::read) return;
    const auto& t = *c.table;
    std::string key;
    for (const auto& [column, suggestion] : compiled.withheld()) {
        if (column >= c.after.size() || c.after[column].is_unchanged()) continue;  // TOAST not sent: kept as it was
        auto& shape = kept_shapes_[{t.relation_id, t.version, column}];
        if (!shape) {
            auto s = std::make_shared<table_schema>(t);
            s->columns.clear();
            for (const auto& col : t.columns)
                if (col.key) s->columns.push_back(col);
            s->columns.push_back(t.columns[column]);
            shape = std::move(s);
        }
        if (key.empty()) key = key_json(t, c.after);
        change_event image{shape, change_op::update, std::nullopt, {}};
        for (std::size_t i = 0; i < t.columns.size(); ++i)
            if (t.columns[i].key) image.after.push_back(c.after[i]);
        image.after.push_back(c.after[column]);
        kept_.push_back({suggestion, key, change_json(image)});
    }
}

void stream_runner::flush_kept() {
    if (kept_.empty()) return;
    try {
        settings_.suggest->context().keep_values(kept_);
    } catch (const std::exception& e) {
        kept_.clear();
        // Nothing of this batch is applied: the stream reconnects and reads it again.
        throw connector_error("context.db cannot keep the values of a column waiting for a decision (" +
                                  std::string(e.what()) + "); the batch is read again once it can",
                              failure_kind::transient, "context");
    }
    kept_.clear();
}

asio::awaitable<void> stream_runner::apply_suggestions() {
    if (!settings_.suggest) co_return;
    for (const auto& s : settings_.suggest->to_apply(settings_.name)) {
        auto src = source_schemas_.find(s.table);
        if (src == source_schemas_.end()) continue;  // not one of this stream's tables (any more)
        if (s.kind == "new_column") {
            const auto& cols = src->second->columns;
            if (std::none_of(cols.begin(), cols.end(), [&](const column_def& c) { return c.name == s.column; })) {
                // Dropped again before the accept: nothing to add or write.
                settings_.suggest->applied(s, 0, "column " + s.column + " no longer exists at the source; nothing to add");
                continue;
            }
            const auto rows = co_await backfill(s, src->second);
            settings_.suggest->applied(s, rows, "column " + s.column + " added, " + std::to_string(rows) +
                                                    " kept value(s) backfilled");
            log_("info", "stream " + settings_.name + ": suggestion " + std::to_string(s.id) + ": " + s.table + "." +
                             s.column + " added to the target, " + std::to_string(rows) + " kept value(s) backfilled");
            if (settings_.on_suggestion) settings_.on_suggestion();
            continue;
        }
        // type_change: the target column takes the new type; target_rejects:
        // the target's narrower columns are widened. Then the rows the target
        // rejected are tried again.
        const auto target = target_of(src->second);
        std::string outcome;
        try {
            if (s.kind == "type_change") {
                co_await sink_->alter_column_type(target, s.column);
                outcome = "target column " + s.column + " altered to " + s.new_type;
            } else {
                const auto changed = co_await sink_->widen_columns(target);
                for (const auto& c : changed) outcome += (outcome.empty() ? "" : ", ") + c;
                outcome = changed.empty() ? "no column of " + target->qualified() + " is narrower than the source's"
                                          : "widened " + target->qualified() + " " + outcome;
            }
        } catch (const connector_error& e) {
            if (e.kind() == failure_kind::transient) throw;
            outcome = "the target refused to change " + target->qualified() + ": " + e.what();
        }
        settings_.suggest->applied(s, 0, outcome);
        log_("info", "stream " + settings_.name + ": suggestion " + std::to_string(s.id) + ": " + outcome);
        if (settings_.on_suggestion) settings_.on_suggestion();
        prepared_.erase(target->relation_id);  // statements re-prepared for the new types
        if (ledger_) co_await retry(std::make_shared<retry_outcome>(), {});
    }
}

// Rows set aside in the batch that just committed, grouped by table, class
// and code, for the error patterns (and target_rejects suggestions).
void stream_runner::note_rejects() {
    if (!settings_.suggest || pending_failed_.empty()) return;
    std::map<std::tuple<std::string, std::string, std::string>, suggest::reject_group> groups;
    for (const auto& e : pending_failed_) {
        auto& g = groups[{e.table, e.error_class, e.code}];
        g.table = e.table;
        g.error_class = e.error_class;
        g.code = e.code;
        g.message = e.message;
        ++g.count;
    }
    std::vector<suggest::reject_group> list;
    for (auto& [k, g] : groups) {
        for (const auto& [name, schema] : source_schemas_)
            if (target_of(schema)->qualified() == g.table) g.source_table = name;
        list.push_back(std::move(g));
    }
    try {
        const auto created = settings_.suggest->on_rejects(settings_.name, list, settings_.autopilot);
        for (const auto& sug : created) {
            log_("warning", "stream " + settings_.name + ": suggestion " + std::to_string(sug.id) + ": " + sug.message);
            if (sug.status == "auto_accepted") apply_suggestions_ = true;
        }
        if (!created.empty() && settings_.on_suggestion) settings_.on_suggestion();
    } catch (const std::exception& e) {
        log_("warning", "stream " + settings_.name + ": cannot record error patterns in context.db (" + e.what() + ")");
    }
}

asio::awaitable<std::int64_t> stream_runner::backfill(const context::suggestion_record& s,
                                                      std::shared_ptr<const table_schema> source) {
    transaction header;
    header.commit_lsn = header.end_lsn = committed_;
    co_await sink_->begin_transaction(header);
    const auto target = target_of(source);
    co_await sink_->prepare_table(target, false);
    prepared_[target->relation_id] = target->version;
    schemas_[target->qualified()] = target;
    std::string after;
    std::uint64_t applied = 0;
    for (;;) {
        auto page = settings_.suggest->context().kept_values(s.id, after, 5000);
        if (page.empty()) break;
        after = page.back().row_key;
        std::vector<change_event> changes;
        changes.reserve(page.size());
        for (const auto& kv : page) {
            auto c = change_from_json(kv.image, source);
            if (!c) continue;
            std::string why;
            if (rules_ && !rules_->empty() && rules_->apply(*c, why, 0, true) != rules::table_rules::outcome::keep) continue;
            changes.push_back(std::move(*c));
        }
        std::vector<change_ref> refs;
        refs.reserve(changes.size());
        for (const auto& c : changes) refs.push_back({&c, &header});
        co_await apply_isolated(refs, applied);  // a value the target rejects is set aside, the rest go in
        co_await source_->heartbeat();
    }
    co_await sink_->commit_transaction(committed_);
    commit_set_aside();
    co_return static_cast<std::int64_t>(applied);
}

}  // namespace datavor::engines::stream
