// The page the browser check drives: mounts one form at a time and reports what the form does when
// it is submitted. Driven by check.mjs through `window.formCheck`.
import { Component, createRef } from "react";
import { flushSync } from "react-dom";
import { createRoot } from "react-dom/client";
import CoreForm from "@rjsf/core";
import { Form as MuiForm } from "@rjsf/mui";
import validator from "@rjsf/validator-ajv8";
import { ALLOCATION, ALTDATA_KEY, allocationSchema, requestSchema, requestTemplates, requestValidate } from "./skyportal.jsx";

const root = createRoot(document.getElementById("form-under-test"));
let current = null;

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

/** Mount a fresh form for `spec` ({theme, schema, uiSchema, formData, html5, wrap}). */
function mount(spec) {
  let schema = spec.schema;
  let formData = spec.formData;
  let payloadKey = null;
  if (spec.wrap?.kind === "request") {
    schema = requestSchema(schema, spec.wrap.requestType);
  } else if (spec.wrap?.kind === "allocation") {
    schema = allocationSchema(schema, spec.wrap.instrumentTitle);
    payloadKey = ALTDATA_KEY;
    formData = formData === undefined ? { ...ALLOCATION } : { ...ALLOCATION, [ALTDATA_KEY]: formData };
  }
  let settle;
  const done = new Promise((resolve) => (settle = resolve));
  const harness = createRef();
  current = { schema, done, harness };
  flushSync(() =>
    root.render(
      <Harness
        key={Math.random()}
        ref={harness}
        spec={spec}
        schema={schema}
        formData={formData}
        onSubmit={({ formData: submitted }) => settle({ submitted: true, formData: submitted, errors: [] })}
        onError={(errors) => settle({ submitted: false, errors })}
      />,
    ),
  );
  return { schema, payloadKey, paths: inputPaths(schema) };
}

function state() {
  return current.harness.current.form.current.state.formData;
}

const plain = (value) => JSON.parse(JSON.stringify(value ?? null));

/**
 * What the last submit did. When the browser's own validation blocked it (HTML5 validation on and
 * an input invalid) the form never hears of it: report those inputs. Otherwise wait for RJSF's
 * onSubmit or onError, and add Ajv's raw errors on the data the form held.
 */
async function outcome() {
  const form = document.querySelector("#form-under-test form");
  if (!form.noValidate) {
    const invalid = [...form.elements].filter((el) => el.willValidate && !el.validity.valid);
    if (invalid.length) {
      return {
        submitted: false,
        blockedBy: "html5",
        formData: plain(state()),
        // MUI's select keeps its value in a hidden input whose id is React's own: its name is RJSF's id.
        html5: invalid.map((el) => ({ id: el.id, name: el.name || null, message: el.validationMessage })),
        errors: [],
        raw: [],
      };
    }
  }
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), 2000));
  const result = await Promise.race([current.done, timeout]);
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

/** Mount `spec`, press its submit button and report the outcome, in one call (the instances). */
async function submit(spec) {
  const mounted = mount(spec);
  document.querySelector("#form-under-test button[type=submit]").click();
  return { ...mounted, ...(await outcome()) };
}

/** The rendered form's markup, for telling whether a screenshot is out of date. */
function markup() {
  return document.getElementById("form-under-test").innerHTML;
}

window.formCheck = { mount, outcome, submit, markup };
