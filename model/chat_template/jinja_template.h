// A parsed Jinja template and its interpreter: scopes (a for loop's body does not leak `set`
// outside it; namespace() objects do), the loop variable, macros, break/continue, and the
// filters, tests, string/dict methods and globals (raise_exception, strftime_now, namespace,
// range, dict) chat templates use. Errors are TemplateErrors.
#pragma once

#include <memory>
#include <string>

#include "model/chat_template/jinja_ast.h"

namespace lockstep::jinja {

class Template {
 public:
  explicit Template(const std::string& source);  // throws TemplateError on a syntax error
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // Renders with `context` as the outermost variables (plus the globals).
  std::string render(const Dict& context) const;

 private:
  std::shared_ptr<const StmtList> body_;
};

}  // namespace lockstep::jinja
