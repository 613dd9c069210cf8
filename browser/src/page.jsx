// The page the browser check drives: mounts one form at a time and reports what the form does when
// it is submitted. Driven by check.mjs through `window.formCheck`.
import { Component, createRef } from "react";
import { flushSync } from "react-dom";
import { createRoot } from "react-dom/client";
import CoreForm from "@rjsf/core";
import { Form as MuiForm } from "@rjsf/mui";
import validator from "@rjsf/validator-ajv8";
import { ALLOCATION, ALTDATA_KEY, allocationSchema, requestSchema, requestTemplates, requestValidate } from "./skyportal.jsx";

const container = document.getElementById("form-under-test");
let root = null;
let current = null;

// An error as the browser would print it, for the "broken" outcome.
const describe = (error) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

// Where each input sits in the data: RJSF ids are "root" and the property names joined by "_".
function inputPaths(schema, id = "root", path = "$", out = {}) {
  const visit = (properties) => {
    for (const [key, sub] of Object.entries(properties || {})) {
      out[`${id}_${key}`] = `${path}.${key}`;
      if (sub && typeof sub === "object") inputPaths(sub, `${id}_${key}`, `${path}.${key}`, out);
    }
  };
  visit(schema?.properties);
  for (const dependency of Object.values(schema?.dependencies || {})) {
    for (const branch of dependency?.oneOf || dependency?.anyOf || [dependency]) visit(branch?.properties);
  }
  return out;
}

class Harness extends Component {
  form = createRef();
  render() {
    const { spec, schema, formData, onSubmit, onError } = this.props;
    const common = {
      ref: this.form,
      schema,
      formData,
      validator,
      noHtml5Validate: !spec.html5,
      onSubmit,
      onError, // without it RJSF logs each refused submission as a console error
    };
    if (spec.theme === "core") return <CoreForm {...common} uiSchema={spec.uiSchema} />;
    if (spec.wrap?.kind === "request") {
      return <MuiForm {...common} uiSchema={spec.uiSchema} templates={requestTemplates} customValidate={requestValidate} />;
    }
    return <MuiForm {...common} />; // SkyPortal's allocation form: no uiSchema
  }
}

// The schema as the host wraps it, per form and mode: one object for all of a form's submissions,
// so Ajv compiles it once (it caches compiled schemas by object) and SkyPortal's date defaults are
// computed once, as when an observer opens the form.
const wrapped = new Map();
function formSchema(spec) {
  const key = JSON.stringify([spec.wrap, spec.schema]);
  if (!wrapped.has(key)) {
    let schema = spec.schema;
    if (spec.wrap?.kind === "request") schema = requestSchema(schema, spec.wrap.requestType);
    else if (spec.wrap?.kind === "allocation") schema = allocationSchema(schema, spec.wrap.instrumentTitle);
    wrapped.set(key, schema);
  }
  return wrapped.get(key);
}

// A render error (while mounting, or when a submission re-renders the form) makes the form in
// progress unusable; the root reports it here.
function fail(error) {
  if (!current) return;
  current.broken ??= `the form crashed: ${describe(error)}`;
  current.settle({ submitted: false, errors: [] });
}

/**
 * Show the form of `spec` ({theme, schema, uiSchema, formData, html5, wrap}) holding its formData.
 * A fresh React root unless `again` and the root already shows this very form, usable: then the
 * form is given the new data as a prop, as a re-render in SkyPortal would (RJSF recomputes its
 * state from it): the same verdicts on every submission of the 16 facilities' forms, in about half
 * the time.
 */
function mount(spec, again = false) {
  const schema = formSchema(spec);
  let formData = spec.formData;
  let payloadKey = null;
  if (spec.wrap?.kind === "allocation") {
    payloadKey = ALTDATA_KEY;
    formData = formData === undefined ? { ...ALLOCATION } : { ...ALLOCATION, [ALTDATA_KEY]: formData };
  }
  const key = JSON.stringify([spec.theme, spec.html5, spec.wrap, spec.schema, spec.uiSchema]);
  const reuse = again && current && !current.broken && current.key === key;
  let settle;
  const done = new Promise((resolve) => (settle = resolve));
  const harness = reuse ? current.harness : createRef();
  const mounted = { key, schema, formData, done, settle, harness, broken: null };
  current = mounted;
  if (!reuse) {
    // After an uncaught render error React unmounts the tree it had: a fresh root each time.
    root?.unmount();
    root = createRoot(container, { onUncaughtError: fail, onCaughtError: fail });
  }
  const harnessed = (
    <Harness
      ref={harness}
      spec={spec}
      schema={schema}
      formData={formData}
      onSubmit={({ formData: submitted }) => settle({ submitted: true, formData: submitted, errors: [] })}
      onError={(errors) => settle({ submitted: false, errors })}
    />
  );
  try {
    flushSync(() => root.render(harnessed));
  } catch (error) {
    fail(error);
  }
  if (!mounted.broken && !container.querySelector("form button[type=submit]")) {
    mounted.broken = "the form rendered without a submit button";
  }
  return { schema, payloadKey, paths: inputPaths(schema), broken: mounted.broken };
}

function state() {
  return current.harness.current?.form.current?.state.formData;
}

const plain = (value) => JSON.parse(JSON.stringify(value ?? null));

/**
 * What the last submit did. When the browser's own validation blocked it (HTML5 validation on and
 * an input invalid) the form never hears of it: report those inputs. Otherwise wait for RJSF's
 * onSubmit or onError, and add Ajv's raw errors on the data the form held.
 */
async function outcome() {
  const form = container.querySelector("form");
  if (current.broken || !form) return broken(state() ?? current.formData, current.broken || "the form disappeared when submitted");
  if (!form.noValidate) {
    const invalid = [...form.elements].filter((el) => el.willValidate && !el.validity.valid);
    if (invalid.length) {
      return {
        submitted: false,
        blockedBy: "html5",
        formData: plain(state()),
        // Some widgets validate a hidden input of their own (MUI's select): its name is the field's id.
        html5: invalid.map((el) => ({ id: el.id, name: el.name, message: el.validationMessage })),
        errors: [],
        raw: [],
      };
    }
  }
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), 2000));
  const result = await Promise.race([current.done, timeout]);
  if (current.broken) return broken(state() ?? current.formData, current.broken); // it threw while submitting
  if (result === null) return { submitted: false, blockedBy: "nothing", formData: plain(state()), html5: [], errors: [], raw: [] };
  const formData = result.submitted ? result.formData : state();
  const raw = result.submitted ? [] : validator.rawValidation(current.schema, formData).errors || [];
  return {
    submitted: result.submitted,
    blockedBy: result.submitted ? null : "rjsf",
    formData: plain(formData),
    html5: [],
    errors: result.errors.map(({ name, property, message, params, schemaPath }) => plain({ name, property, message, params, schemaPath })),
    raw: raw.map(({ keyword, instancePath, schemaPath, params, message }) => plain({ keyword, instancePath, schemaPath, params, message })),
  };
}

/** The outcome of a form that could not be submitted at all: `broken` says why. */
function broken(formData, why) {
  return { submitted: false, blockedBy: "broken", broken: why, formData: plain(formData), html5: [], errors: [], raw: [] };
}

/** Mount `spec`, press its submit button and report the outcome, in one call (the instances). */
async function submit(spec) {
  const mounted = mount(spec, true);
  if (mounted.broken) return { ...mounted, ...broken(current.formData, mounted.broken) };
  container.querySelector("form button[type=submit]").click();
  return { ...mounted, ...(await outcome()) };
}

/** The rendered form's markup, for telling whether a screenshot is out of date. */
function markup() {
  return container.innerHTML;
}

window.formCheck = { mount, outcome, submit, markup };
