// Internal to projections/: the binary form of StaffAuditState's list items (grammar in
// byte_codec.h; the whole-state grammar is in staff_audit.cc).
#pragma once

#include "byte_codec.h"
#include "projections/staff_audit.h"

namespace gridledger::projections {

// position:varint occurred_at_us:svarint stream:string what:string approved_by:optional<string>
void PutSensitiveAccess(codec::Writer& w, const SensitiveAccess& item);
SensitiveAccess GetSensitiveAccess(codec::Reader& r);
// position:varint occurred_at_us:svarint topic:string hours:double organizer:u8
void PutTrainingRecord(codec::Writer& w, const TrainingRecord& item);
TrainingRecord GetTrainingRecord(codec::Reader& r);
// position:varint occurred_at_us:svarint app:string level:svarint to_org:string to_person:string
void PutUrgeIssued(codec::Writer& w, const UrgeIssued& item);
UrgeIssued GetUrgeIssued(codec::Reader& r);
// position:varint corrects_position:varint corrected_by:string occurred_at_us:svarint
// level:svarint to_org:string to_person:string
void PutUrgeCorrection(codec::Writer& w, const UrgeCorrection& item);
UrgeCorrection GetUrgeCorrection(codec::Reader& r);
// staff_id:string last_position:varint actions_total:varint
// actions_by_type: count × (type:string count:varint), in key order
void PutStaffAuditCounters(codec::Writer& w, const StaffAuditState& state);
void GetStaffAuditCounters(codec::Reader& r, StaffAuditState& state);

}  // namespace gridledger::projections
