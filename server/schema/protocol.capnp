# ledgerd's TCP protocol (see server/README.md, "TCP protocol").
#
# Framing: every message is one standard Cap'n Proto stream frame (capnp::writeMessage): a segment
# table (u32 segment count - 1, u32 size in words per segment, padded to a word) followed by the
# segments. `capnp decode protocol.capnp Request` (or Response) reads a captured frame.
#
# The client sends Request frames, the server Response frames, each on its own TCP stream. The first
# Request must be `hello` with a bearer token; anything else is answered with an `unauthenticated`
# error and the connection is closed. Requests are processed concurrently (pipelining, up to the
# server's connectionInflightMax at once) and answered in completion order: match answers by `id`.
@0xa449605b177134d3;

$import "/capnp/c++.capnp".namespace("gridledger::protocol");

const protocolVersion :UInt32 = 2;
# 2: resume points carry hashes (Read afterHash, Subscribe afterHash, Events lastHash, Checkpoint
# hash, Subscribed lastHash). A version 1 server ignores afterHash: clients must not rely on it.
# Compatible both ways otherwise.

# ---------------------------------------------------------------------------------------------
# Client -> server

struct Request {
  id @0 :UInt64;
  # Chosen by the client, echoed in every Response about this request (for a subscription: every
  # frame of it). Use distinct non-zero ids; 0 is the id of answers about the connection itself.

  union {
    hello @1 :Hello;
    append @2 :Append;
    read @3 :Read;
    subscribe @4 :Subscribe;
    credit @5 :Credit;
    # Not answered unless refused (no such subscription: error `not_found` with this request's id).
    cancel @6 :Cancel;
    # Ends a subscription; answered by `ended` with the subscription's id.
  }
}

struct Hello {
  token @0 :Text;            # bearer token (see ingest/README.md, tokens file)
  clientName @1 :Text;       # for logs, e.g. "ledgerctl/0.1"
  protocolVersion @2 :UInt32;  # the client's; the server answers with its own
}

struct Append {
  # One or more client events, each the JSON text of domain.md's "Event contract", validated by the
  # server exactly as over HTTP. Each event is judged and appended on its own; events of one stream
  # are appended in request order, each after the previous one of its stream was answered. At most
  # the server's batchEventsMax events.
  json @0 :List(Text);
  # A binary form (a list of typed events) can be added later as a new field; a request then
  # carries exactly one of the forms.
}

struct Read {
  union {
    log :group {
      # Stored events by global position: positions >= fromPosition (0 counts as 1; past the
      # head + 1 refused, rule beyond_head).
      fromPosition @0 :UInt64;
      limit @1 :UInt32;  # 0 = the server's page size (readEventsMax); larger is clamped
      afterHash @6 :Data;
      # Optional: the hash (32 bytes) of the event at fromPosition - 1 as the client holds it. The
      # server compares it with its own and refuses the read (field afterHash, rule forked) when
      # they differ: the client's events up to there came from another history. "" = not checked.
    }
    stream :group {
      # Events of one stream with version >= fromVersion.
      stream @2 :Text;
      fromVersion @3 :UInt64;  # past the stream's last version + 1 refused (rule beyond_head)
      limit @4 :UInt32;  # as `log.limit` above
      afterHash @7 :Data;
      # As `log.afterHash`, for the event at version fromVersion - 1 of the stream (rule forked).
    }
  }
  approvedBy @5 :Text;
  # Who approved this read, when it shows customers' personal data (events of `app/` streams):
  # such a read is recorded as a SensitiveDataAccessed event of the reader, with this name ("" =
  # no approval), before anything is sent; when it cannot be recorded, the read is refused.
}

struct Subscribe {
  # Catch-up subscription: every stored event with position >= fromPosition that passes the filter,
  # in position order, then new events as they are committed. Events are only sent against credit.
  fromPosition @0 :UInt64;   # 0 counts as 1; past the head + 1 refused (rule beyond_head)
  afterHash @5 :Data;
  # As Read.log.afterHash: the hash of the event at fromPosition - 1 as the client holds it (from
  # the last frame it received: Events.lastHash or Checkpoint.hash); refused with rule forked when
  # this ledger's differs. "" = not checked.
  streamPrefix @1 :Text;     # only streams starting with this ("" = every stream)
  types @2 :List(Text);      # only these event types (empty = every type)
  credit @3 :UInt32;         # initial credit, in events (at most the server's creditMax)
  approvedBy @4 :Text;
  # As Read.approvedBy: a subscription whose filter can match `app/` streams is recorded once, when
  # it starts, as a SensitiveDataAccessed event of the subscriber.
}

struct Credit {
  subscription @0 :UInt64;   # the id of the subscribe request
  events @1 :UInt32;         # more events the client is ready to receive
}

struct Cancel {
  subscription @0 :UInt64;   # the id of the subscribe request
}

# ---------------------------------------------------------------------------------------------
# Server -> client

struct Response {
  id @0 :UInt64;
  # The request this answers. 0: about the connection itself (frame too large, malformed frame,
  # no hello in time, too many connections); the server closes the connection after it.

  union {
    welcome @1 :Welcome;          # to hello
    appended @2 :List(AppendResult);  # to append: one per event, in request order
    events @3 :Events;            # to read (one page), or a frame of a subscription
    checkpoint @4 :Checkpoint;    # a frame of a subscription whose filter skipped many events
    error @5 :Error;              # the request was refused (for id 0: the connection is closed)
    busy @6 :Busy;                # a limit was reached: nothing was done, retry later
    subscribed @7 :Subscribed;    # to subscribe: accepted; frames follow against credit
    ended @8 :Void;               # to cancel: no more frames of the subscription `id`
  }
}

struct Principal {
  id @0 :Text;
  role @1 :Text;  # "clerk", "inspector", "callback_agent", "director", "auditor", "reader", "admin"
  org @2 :Text;
}

struct Welcome {
  principal @0 :Principal;
  protocolVersion @1 :UInt32;
  # The server's limits, so a client can size its requests.
  frameBytesMax @2 :UInt64;
  batchEventsMax @3 :UInt32;
  connectionInflightMax @4 :UInt32;
  readEventsMax @5 :UInt32;
  creditMax @6 :UInt32;
}

struct AppendResult {
  union {
    ok @0 :Appended;
    error @1 :Error;  # this event was refused and nothing of it was stored
  }
}

struct Appended {
  position @0 :UInt64;
  stream @1 :Text;
  version @2 :UInt64;
  duplicate @3 :Bool;            # a retry: the event_id was already stored with the same content
  violations @4 :List(Text);     # workflow rule ids the event violates (stored and flagged)
  violationMessages @5 :List(Text);  # what each of `violations` says, in the same order
  settles @6 :List(Settled);     # violations of earlier events of the stream this event settles
}

# A violation of an earlier event settled by the appended one: the fact it missed, entered late
# but dated on or before it (domain/include/domain/workflow.h, RulesSettledBy).
struct Settled {
  rule @0 :Text;
  position @1 :UInt64;  # of the event the violation was flagged on
  message @2 :Text;
}

struct Events {
  # Stored events, each the ledger's canonical Envelope bytes as stored (ledger/schema/envelope.capnp:
  # one segment, no segment table, root pointer at word 0), in position order.
  envelopes @0 :List(Data);
  next @1 :UInt64;
  # Where to continue. Log reads and subscriptions: a position — every position below it was
  # examined (a subscription resumes from here after a reconnect). Stream reads: a version.
  lastHash @2 :Data;
  # Log reads and subscriptions: the hash of the event at next - 1 (whether or not it passed the
  # filter), to send as afterHash with next when resuming; "" when next is 1. Stream reads: the
  # hash of the stream's event at version next - 1 ("" when next is 0).
}

struct Checkpoint {
  position @0 :UInt64;  # every position up to and including this one was examined by the filter
  hash @1 :Data;        # the hash of the event at `position` (afterHash when resuming after it)
}

struct Error {
  code @0 :Text;
  # "unauthenticated", "forbidden", "invalid", "version_conflict", "duplicate_mismatch", "busy",
  # "not_found", "shutdown", "internal" (the ServiceError codes, as over HTTP).
  message @1 :Text;
  field @2 :Text;   # the JSON field at fault ("" when none)
  rule @3 :Text;    # the rule broken ("" when none)
  hasCurrentVersion @4 :Bool;
  currentVersion @5 :Int64;  # version_conflict: the stream's version (-1: no such stream)
}

struct Busy {
  limit @0 :Text;    # the limit reached, as named in server/limits.h
  message @1 :Text;
}

struct Subscribed {
  head @0 :UInt64;  # the log's head when the subscription started
  lastHash @1 :Data;
  # The hash of the event at fromPosition - 1 ("" when that is 0): what to resume with should no
  # frame come before the connection ends.
}
