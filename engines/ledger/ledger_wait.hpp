#pragma once
// Waiting for the ledger from a coroutine without blocking its thread: polls
// ledger::written() on a timer until what was appended before the call is
// on disk, or `max` passes (false; ledger::health() says why).
#include "engines/ledger/ledger.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>

namespace datavor::engines::ledger {

boost::asio::awaitable<bool> wait_written(ledger& l, std::chrono::milliseconds max);

}  // namespace datavor::engines::ledger
