#include "connectors/mariadb/mariadb_prober.hpp"

#include "connectors/common/sql_quote.hpp"
#include "connectors/mariadb/mariadb_session.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

namespace asio = boost::asio;

namespace datavor::connectors::mariadb {
namespace {

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

bool is_loopback(const std::string& host) {
    return host == "localhost" || host == "::1" || host.starts_with("127.");
}

std::string persist_note(const std::string& setting) {
    return " and persist it: add `" + setting +
           "` under [mariadb] in the server configuration (e.g. /etc/mysql/mariadb.conf.d/50-server.cnf)";
}

}  // namespace

asio::awaitable<probe_report> mariadb_prober::run_checks(probe_request req, probe_progress progress) {
    probe_report rep;
    check_recorder add(rep, std::move(progress));
    const auto& spec = req.spec;
    mariadb_connect_options o;
    o.host = spec.host;
    o.port = spec.port ? spec.port : 3306;
    o.user = spec.user;
    o.database = spec.database;
    o.password = req.password;
    o.ssl_mode = spec.param("ssl-mode", spec.param("sslmode"));
    o.ssl_ca = spec.param("ssl-ca", spec.param("sslrootcert"));
    o.timeout = req.timeout;

    std::optional<mariadb_session> s;
    std::string connect_error;
    try {
        s.emplace(co_await mariadb_session::connect(o));
    } catch (const mariadb_error& e) {
        connect_error = e.what();
    }
    if (!s) {
        add("reachable", "Server is reachable and accepts the credentials", check_status::fail, connect_error,
            "Check host, port and user in the URL, that the server listens on that address (bind-address), "
            "that the account exists for this client host (CREATE USER 'datavor'@'<client-ip>' IDENTIFIED BY …), "
            "and that the password source is right.");
        co_return rep;
    }
    add("reachable", "Server is reachable and accepts the credentials", check_status::pass,
        "connected to " + o.host + ":" + std::to_string(o.port));

    const std::string tls_fix =
        "Enable TLS on the server (ssl_cert, ssl_key, ssl_ca under [mariadb]) and add "
        "`?ssl-mode=verify-full&ssl-ca=/path/to/ca.pem` to the connection URL.";
    if (s->tls_in_use())
        add("tls", "Connection is encrypted (TLS)", check_status::pass, "TLS in use");
    else if (is_loopback(o.host))
        add("tls", "Connection is encrypted (TLS)", check_status::warn, "not encrypted; acceptable on loopback only",
            tls_fix);
    else
        add("tls", "Connection is encrypted (TLS)", check_status::fail,
            "not encrypted over the network: credentials and data travel in clear", tls_fix);

    std::map<std::string, std::string> vars;
    for (auto& row : co_await s->query(
             "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('version','log_bin','binlog_format',"
             "'binlog_row_image','binlog_row_metadata')"))
        if (row.size() == 2 && row[0]) vars[*row[0]] = row[1].value_or("");
    rep.server_version = vars["version"];
    const bool is_mariadb = upper(rep.server_version).find("MARIADB") != std::string::npos;
    int major = 0, minor = 0;
    std::sscanf(rep.server_version.c_str(), "%d.%d", &major, &minor);
    const bool version_ok = is_mariadb ? (major > 10 || (major == 10 && minor >= 5)) : (major >= 8);
    add("version", is_mariadb ? "MariaDB 10.5 or later" : "MySQL 8.0 or later",
        version_ok ? check_status::pass : check_status::fail, "server " + rep.server_version,
        "Upgrade the server: binlog_row_metadata=FULL (column names in the binlog) needs MariaDB 10.5+ or MySQL 8.0+.");

    const std::string log_bin = upper(vars["log_bin"]);
    add("log_bin", "Binary log enabled (log_bin)", log_bin == "ON" || log_bin == "1" ? check_status::pass : check_status::fail,
        "log_bin is " + (log_bin.empty() ? std::string("absent") : log_bin),
        "log_bin cannot change at runtime: add `log_bin = mariadb-bin` and `server_id = 1` under [mariadb] in "
        "the server configuration, then restart the server");
    auto setting = [&](const std::string& name, const std::string& want) {
        const std::string have = upper(vars[name]);
        add(name, name + " = " + want, have == want ? check_status::pass : check_status::fail,
            name + " is " + (have.empty() ? std::string("absent") : have),
            "SET GLOBAL " + name + " = '" + want + "';" + persist_note(name + " = " + want));
    };
    setting("binlog_format", "ROW");
    setting("binlog_row_image", "FULL");
    setting("binlog_row_metadata", "FULL");

    // Grants: information_schema lists the current account's own privileges,
    // under GRANTEE 'user'@'host' written without escaping. CURRENT_USER() is
    // user@host; the host has no '@' but the user may, so split at the last one.
    const std::string account_host = "SUBSTRING_INDEX(CURRENT_USER(), '@', -1)";
    const std::string account_user =
        "LEFT(CURRENT_USER(), CHAR_LENGTH(CURRENT_USER()) - CHAR_LENGTH(" + account_host + ") - 1)";
    const std::string grantee_expr = "CONCAT('''', " + account_user + ", '''@''', " + account_host + ", '''')";
    // The account as SQL for the fixes: each part quoted, so a name with a quote stays a name.
    auto who = co_await s->query("SELECT " + account_user + ", " + account_host);
    const std::string grantee = (!who.empty() && who[0].size() == 2 && who[0][0] && who[0][1])
                                    ? quote_mysql_literal(*who[0][0]) + "@" + quote_mysql_literal(*who[0][1])
                                    : "''@''";
    std::set<std::string> global;
    for (auto& row : co_await s->query(
             "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = " + grantee_expr))
        if (row[0]) global.insert(upper(*row[0]));
    std::vector<std::string> missing;
    if (!global.count("RELOAD")) missing.push_back("RELOAD");
    if (!global.count("REPLICATION SLAVE")) missing.push_back("REPLICATION SLAVE");
    if (!global.count("BINLOG MONITOR") && !global.count("REPLICATION CLIENT"))
        missing.push_back(is_mariadb ? "BINLOG MONITOR" : "REPLICATION CLIENT");
    std::string have_list, missing_list;
    for (const auto& p : missing) missing_list += (missing_list.empty() ? "" : ", ") + p;
    add("replication_grants",
        std::string("RELOAD, REPLICATION SLAVE and ") + (is_mariadb ? "BINLOG MONITOR" : "REPLICATION CLIENT") +
            " granted",
        missing.empty() ? check_status::pass : check_status::fail,
        missing.empty() ? "granted" : "missing: " + missing_list,
        "GRANT " + missing_list + " ON *.* TO " + grantee + ";");

    // SELECT on the tables (or on the URL's database when no tables are named).
    std::vector<std::string> tables = req.tables;
    std::vector<std::string> no_select, not_found;
    std::string select_fix;
    const bool global_select = global.count("SELECT") > 0;
    if (tables.empty() && !spec.database.empty()) {
        if (!global_select) {
            auto r = co_await s->query(
                "SELECT 1 FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = " + grantee_expr +
                " AND PRIVILEGE_TYPE = 'SELECT' AND TABLE_SCHEMA = " + quote_mysql_literal(spec.database));
            if (r.empty()) {
                no_select.push_back(spec.database + ".*");
                select_fix = "GRANT SELECT ON " + quote_mysql_ident(spec.database) + ".* TO " + grantee + ";";
            }
        }
    }
    for (const auto& t : tables) {
        auto qn = split_qualified(t, spec.database);
        auto exists = co_await s->query("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = " +
                                        quote_mysql_literal(qn.schema) +
                                        " AND TABLE_NAME = " + quote_mysql_literal(qn.name));
        if (exists.empty()) {
            not_found.push_back(t);
            // information_schema hides a table on which the account has no
            // privilege at all: without global SELECT it may exist unreadable.
            if (!global_select) {
                no_select.push_back(t);
                select_fix += "GRANT SELECT ON " + quote_mysql_ident(qn.schema) + "." + quote_mysql_ident(qn.name) +
                              " TO " + grantee + "; ";
            }
            continue;
        }
        if (global_select) continue;
        auto r = co_await s->query(
            "SELECT 1 FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = " + grantee_expr +
            " AND PRIVILEGE_TYPE = 'SELECT' AND TABLE_SCHEMA = " + quote_mysql_literal(qn.schema) +
            " UNION ALL SELECT 1 FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = " + grantee_expr +
            " AND PRIVILEGE_TYPE = 'SELECT' AND TABLE_SCHEMA = " + quote_mysql_literal(qn.schema) +
            " AND TABLE_NAME = " + quote_mysql_literal(qn.name));
        if (r.empty()) {
            no_select.push_back(t);
            select_fix += "GRANT SELECT ON " + quote_mysql_ident(qn.schema) + "." + quote_mysql_ident(qn.name) +
                          " TO " + grantee + "; ";
        }
    }
    if (!tables.empty())
        add("tables_exist", "Tables exist", not_found.empty() ? check_status::pass : check_status::fail,
            not_found.empty() ? "all " + std::to_string(tables.size()) + " tables found"
                              : "not found: " + [&] {
                                    std::string x;
                                    for (auto& n : not_found) x += (x.empty() ? "" : ", ") + n;
                                    return x;
                                }(),
            std::string("Check the table names (database.table); create the tables or remove them from the list.") +
                (global_select ? ""
                               : " A table this account has no privilege on is not visible to it: see select_privilege."));
    if (tables.empty() && spec.database.empty()) {
        add("select_privilege", "SELECT on the tables (initial snapshot)",
            global_select ? check_status::pass : check_status::skip,
            global_select ? "global SELECT" : "no tables or database named");
    } else {
        std::string nl;
        for (auto& n : no_select) nl += (nl.empty() ? "" : ", ") + n;
        add("select_privilege", "SELECT on the tables (initial snapshot)",
            no_select.empty() ? check_status::pass : check_status::fail,
            no_select.empty() ? "SELECT granted" : "no SELECT on: " + nl, select_fix);
    }
    co_return rep;
}

}  // namespace datavor::connectors::mariadb
