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

namespace {

// SHA-256 fetched once, and one digest context per thread. With OpenSSL 3, EVP_sha256() in every
// EVP_DigestInit_ex means a method-store lookup under a global lock, and a context per hash an
// allocation: together more than the hashing of a ~600-byte envelope (the stager's profile).
class Sha256 {
 public:
  static Sha256& ForThisThread() {
    thread_local Sha256 instance;
    return instance;
  }

  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  ~Sha256() { EVP_MD_CTX_free(context_); }

  void Begin() {
    const bool ok = EVP_DigestInit_ex(context_, Algorithm(), nullptr) == 1;
    LEDGER_ASSERT(ok);
  }
  void Add(const void* bytes, size_t size) {
    const bool ok = EVP_DigestUpdate(context_, bytes, size) == 1;
    LEDGER_ASSERT(ok);
  }
  std::string Finish() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int digest_length = 0;
    const bool ok = EVP_DigestFinal_ex(context_, digest.data(), &digest_length) == 1;
    LEDGER_ASSERT(ok && digest_length == kHashBytes);
    return std::string(reinterpret_cast<const char*>(digest.data()), digest_length);
  }

 private:
  Sha256() : context_(EVP_MD_CTX_new()) { LEDGER_ASSERT(context_ != nullptr); }

  static const EVP_MD* Algorithm() {
    static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);  // kept for good
    LEDGER_ASSERT(kSha256 != nullptr);
    return kSha256;
  }

  EVP_MD_CTX* const context_;
};

}  // namespace

void EntrySetDigest::Add(std::string_view key, std::string_view value) {
  Sha256& sha = Sha256::ForThisThread();
  sha.Begin();
  const uint32_t size = static_cast<uint32_t>(key.size());
  const unsigned char size_bytes[4] = {
      static_cast<unsigned char>(size >> 24), static_cast<unsigned char>(size >> 16),
      static_cast<unsigned char>(size >> 8), static_cast<unsigned char>(size)};
  sha.Add(size_bytes, sizeof(size_bytes));
  sha.Add(key.data(), key.size());
  sha.Add(value.data(), value.size());
  const std::string digest = sha.Finish();
  unsigned __int128 carry = 0;
  for (size_t word = 0; word < sum_.size(); ++word) {
    uint64_t part = 0;
    for (size_t byte = 0; byte < 8; ++byte) {
      part |= static_cast<uint64_t>(static_cast<unsigned char>(digest[word * 8 + byte]))
              << (8 * byte);
    }
    const unsigned __int128 total = static_cast<unsigned __int128>(sum_[word]) + part + carry;
    sum_[word] = static_cast<uint64_t>(total);
    carry = total >> 64;
  }
}

std::string ComputeHashOfUnhashed(schema::Envelope::Reader envelope) {
  LEDGER_ASSERT(!envelope.hasHash());
  // The canonical form is unique for a given value, so the hash does not depend on how the
  // message happened to be laid out when it was built.
  kj::Array<capnp::word> canonical = capnp::canonicalize(envelope);

  std::string position_bytes;
  format::PutBigEndian64(&position_bytes, envelope.getPosition());
  auto prev = envelope.getPrevHash();

  Sha256& sha = Sha256::ForThisThread();
  sha.Begin();
  sha.Add(prev.begin(), prev.size());
  sha.Add(position_bytes.data(), position_bytes.size());
  sha.Add(canonical.asBytes().begin(), canonical.asBytes().size());
  return sha.Finish();
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

std::optional<std::string> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string bytes;
  bytes.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int high = digit(hex[i]);
    const int low = digit(hex[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    bytes.push_back(static_cast<char>(high << 4 | low));
  }
  return bytes;
}

}  // namespace gridledger::ledger
