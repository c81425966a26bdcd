// Internal to projections/: the binary form of KpiState and its list items (grammar in
// byte_codec.h). A whole state (Encode / DecodeKpiState):
//   version:u8 (kKpiCodecVersion) scalars lists
//   scalars: org:string month:string report_stream:string last_position:varint
//            report:optional<report_type:string period:string due_date:svarint
//            due_position:varint submitted_date:optional<svarint> submitted_position:varint
//            corrections:varint errors_found:varint>
//   lists:   archived changes callbacks connections document_reviews site_inspections
//            violations late urges trainings revisions settled — each a count, then items in their
//            field order (an app's item ends with its revision).
#pragma once

#include "byte_codec.h"
#include "projections/kpi.h"

namespace gridledger::projections {

inline constexpr uint8_t kKpiCodecVersion =
    0x4f;  // 'O' ('N' before settled violations, 'M' before callbacks said whether they came before
           // the connection, 'L' before archived items listed violations, 'K' before revisions);
           // not MessagePack

void PutKpiScalars(codec::Writer& w, const KpiState& state);
void GetKpiScalars(codec::Reader& r, KpiState& state);

void PutKpiArchived(codec::Writer& w, const KpiArchived& item);
KpiArchived GetKpiArchived(codec::Reader& r);
void PutKpiChange(codec::Writer& w, const KpiChange& item);
KpiChange GetKpiChange(codec::Reader& r);
void PutKpiCallback(codec::Writer& w, const KpiCallback& item);
KpiCallback GetKpiCallback(codec::Reader& r);
void PutKpiConnection(codec::Writer& w, const KpiConnection& item);
KpiConnection GetKpiConnection(codec::Reader& r);
void PutKpiCheck(codec::Writer& w, const KpiCheck& item);
KpiCheck GetKpiCheck(codec::Reader& r);
void PutKpiViolation(codec::Writer& w, const KpiViolation& item);
KpiViolation GetKpiViolation(codec::Reader& r);
void PutKpiLate(codec::Writer& w, const KpiLate& item);
KpiLate GetKpiLate(codec::Reader& r);
void PutKpiUrge(codec::Writer& w, const KpiUrge& item);
KpiUrge GetKpiUrge(codec::Reader& r);
void PutKpiTraining(codec::Writer& w, const KpiTraining& item);
KpiTraining GetKpiTraining(codec::Reader& r);
void PutKpiRevision(codec::Writer& w, const KpiRevision& item);
KpiRevision GetKpiRevision(codec::Reader& r);
void PutKpiSettled(codec::Writer& w, const KpiSettled& item);
KpiSettled GetKpiSettled(codec::Reader& r);

}  // namespace gridledger::projections
