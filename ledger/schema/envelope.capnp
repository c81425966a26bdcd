# The stored form of one event. The ledger knows streams, types, bytes, positions and hashes — never
# the domain's meaning of a payload (that lives in domain/schema/events.capnp).
#
# Stored as the canonical Cap'n Proto encoding of Envelope (one segment, no segment table), so a
# reader can use the stored bytes in place. See ledger/FORMAT.md.
@0xe1dd35a2006e4ac9;

$import "/capnp/c++.capnp".namespace("gridledger::ledger::schema");

struct Actor {
  id @0 :Text;
  role @1 :Text;
  org @2 :Text;
}

struct Envelope {
  position @0 :UInt64;          # global, gapless, from 1
  stream @1 :Text;
  version @2 :UInt64;           # per stream, from 0
  type @3 :Text;
  eventId @4 :Text;             # client-chosen idempotency key, unique forever
  occurredAtUs @5 :Int64;       # business time, Unix microseconds (UTC)
  occurredAtOffsetMinutes @6 :Int32;  # the UTC offset the client wrote, kept for display
  recordedAtUs @7 :Int64;       # ledger time; non-decreasing with position
  actor @8 :Actor;
  payload @9 :Data;             # opaque to the ledger (domain: one message, standard framing)
  prevHash @10 :Data;           # hash of position - 1 (32 zero bytes before position 1)
  hash @11 :Data;               # SHA-256(prevHash || position as big-endian u64 || canonical envelope with hash unset)
  imported @12 :Bool;           # the appender declared it a bulk import of a historical record
  recordedBy @13 :Actor;        # who submitted it, when that may not be its actor: the principal
                                # behind a bulk import, or the user of ledgerctl writing to a data
                                # directory itself; unset when the actor appended it
}
