#include "chain.h"

#include <openssl/evp.h>

#include <array>

#include "format.h"
#include "ledger/assert.h"
#include "ledger/limits.h"

namespace gridledger::ledger::chain {

const std::string& GenesisHash() {
  static const std::string kGenesis(kHashBytes, '\0');
  return kGenesis;
}

std::string ComputeHash(schema::Envelope::Reader envelope) {
  if (!envelope.hasHash()) return ComputeHashOfUnhashed(envelope);
  // Copy without the hash first.
  capnp::MallocMessageBuilder unhashed(256);
  unhashed.setRoot(envelope);
  unhashed.getRoot<schema::Envelope>().disownHash();
  return ComputeHashOfUnhashed(unhashed.getRoot<schema::Envelope>().asReader());
}

std::string ComputeHashOfUnhashed(schema::Envelope::Reader envelope) {
  LEDGER_ASSERT(!envelope.hasHash());
  // The canonical form is unique for a given value, so the hash does not depend on how the
  // message happened to be laid out when it was built.
  kj::Array<capnp::word> canonical = capnp::canonicalize(envelope);

  std::string position_bytes;
  format::PutBigEndian64(&position_bytes, envelope.getPosition());
  auto prev = envelope.getPrevHash();

  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_length = 0;
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  LEDGER_ASSERT(context != nullptr);
  bool ok =
      EVP_DigestInit_ex(context, EVP_sha256(), nullptr) == 1 &&
      EVP_DigestUpdate(context, prev.begin(), prev.size()) == 1 &&
      EVP_DigestUpdate(context, position_bytes.data(), position_bytes.size()) == 1 &&
      EVP_DigestUpdate(context, canonical.asBytes().begin(), canonical.asBytes().size()) == 1 &&
      EVP_DigestFinal_ex(context, digest.data(), &digest_length) == 1;
  EVP_MD_CTX_free(context);
  LEDGER_ASSERT(ok && digest_length == kHashBytes);
  return std::string(reinterpret_cast<const char*>(digest.data()), digest_length);
}

std::string EncodeCanonical(schema::Envelope::Reader envelope) {
  kj::Array<capnp::word> canonical = capnp::canonicalize(envelope);
  auto bytes = canonical.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

}  // namespace gridledger::ledger::chain

namespace gridledger::ledger {

std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (unsigned char byte : bytes) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 0xf]);
  }
  return hex;
}

}  // namespace gridledger::ledger
