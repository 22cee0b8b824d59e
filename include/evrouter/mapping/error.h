#pragma once
// The error every part of the mapping language reports at compile (load) time.

#include <stdexcept>
#include <string>

namespace evr::mapping {

class MappingError : public std::invalid_argument {
 public:
  // `pointer`: where inside a template the problem is (a JSON pointer, "" = the template itself).
  // `unknown`: the variable name that is not bound, when that is the problem (for "did you mean" hints).
  explicit MappingError(const std::string& message, std::string pointer = {}, std::string unknown = {})
      : std::invalid_argument(message), pointer_(std::move(pointer)), unknown_(std::move(unknown)) {}

  const std::string& pointer() const { return pointer_; }
  const std::string& unknown() const { return unknown_; }

 private:
  std::string pointer_;
  std::string unknown_;
};

}  // namespace evr::mapping
