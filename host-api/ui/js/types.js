// The API's answers as JSDoc types for the pages' `@type` annotations. `api-schema.d.ts` is
// generated from the served /openapi.json by openapi-typescript when the dashboard's types are
// checked (tests/all/dashboard_types.rs runs TypeScript's checker over these modules), so a field
// the server renames or drops fails that test instead of showing "undefined". Nothing here runs.

/** @typedef {import("./api-schema").components["schemas"]} Schemas */
/** @typedef {Schemas["TokenInfo"]} TokenInfo */
/** @typedef {Schemas["PluginList"]} PluginList */
/** @typedef {Schemas["PluginDetail"]} PluginDetail */
/** @typedef {Schemas["Manifest"]} Manifest */
/** @typedef {Schemas["Health"]} Health */
/** @typedef {Schemas["Installed"]} Installed */
/** @typedef {Schemas["Invoked"]} Invoked */
/** @typedef {Schemas["KeyList"]} KeyList */
/** @typedef {Schemas["Key"]} Key */
/** @typedef {Schemas["TokenList"]} TokenList */
/** @typedef {Schemas["CreatedToken"]} CreatedToken */
/** @typedef {Schemas["AuditPage"]} AuditPage */
/** @typedef {Schemas["AuditAction"]} AuditAction */
/** @typedef {Schemas["FlowList"]} FlowList */
/** @typedef {Schemas["FlowDefinition"]} FlowDefinition */
/** @typedef {Schemas["Execution"]} Execution */
/** @typedef {Schemas["ExecutionPage"]} ExecutionPage */
/** @typedef {Schemas["DeadLetterPage"]} DeadLetterPage */
/** @typedef {Schemas["Replayed"]} Replayed */
/** @typedef {Schemas["ConnectionList"]} ConnectionList */
/** @typedef {Schemas["ConnectionProbe"]} ConnectionProbe */
/** @typedef {Schemas["MetricsHistory"]} MetricsHistory */
/** @typedef {Schemas["Readiness"]} Readiness */

export {};
