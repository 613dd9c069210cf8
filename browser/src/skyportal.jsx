// How SkyPortal's frontend wraps facility forms, rebuilt from what its forms do (read in SkyPortal's
// static/js/components/ at commit 8bd346c, 2026-08-21); nothing here is SkyPortal's code:
//   - followup_request/FollowupRequestForm.tsx: start/end defaults replaced at render time,
//     descriptions shown as tooltips beside the labels, a start-before-end check, @rjsf/mui with
//     HTML5 validation on;
//   - allocation/AllocationForm.tsx: the altdata schema's `properties`, `required` and
//     `dependencies` (and nothing else) embedded as `_altdata` in SkyPortal's own allocation
//     schema, no uiSchema.
// Left out: what does not concern facility forms (allocation pickers, validity ranges, group
// sharing) and the number field SkyPortal swaps in for comma-decimal locales (it changes typing,
// not the data a mounted form holds).
import Box from "@mui/material/Box";
import Tooltip from "@mui/material/Tooltip";
import HelpOutlineIcon from "@mui/icons-material/HelpOutlineOutlined";
import { Templates as MuiTemplates } from "@rjsf/mui";
import { getUiOptions } from "@rjsf/utils";

const DAY_MS = 24 * 60 * 60 * 1000;

// "YYYY-MM-DD HH:MM:SS" in UTC, the spelling SkyPortal gives its date defaults.
const skyportalDateTime = (date) => date.toISOString().slice(0, 19).replace("T", " ");

/**
 * The request schema as SkyPortal's request form renders it. When the form has both `start_date`
 * and `end_date`, their defaults are replaced: for forced photometry by the last 30 days as
 * "YYYY-MM-DD HH:MM:SS" whatever the `format`; for a triggered request by the schema's default
 * range moved to start now ("YYYY-MM-DD" for `format: date`, else "YYYY-MM-DD HH:MM:SS").
 */
export function requestSchema(schema, requestType, now = new Date()) {
  const props = schema?.properties;
  if (!props?.start_date || !props?.end_date) return schema;
  let start;
  let end;
  if (requestType === "forced_photometry") {
    start = skyportalDateTime(new Date(now.getTime() - 30 * DAY_MS));
    end = skyportalDateTime(now);
  } else {
    const range = new Date(props.end_date.default) - new Date(props.start_date.default);
    const spell = (date, spec) => (spec.format === "date" ? date.toISOString().slice(0, 10) : skyportalDateTime(date));
    start = spell(now, props.start_date);
    end = spell(new Date(now.getTime() + range), props.end_date);
  }
  return {
    ...schema,
    properties: {
      ...props,
      start_date: { ...props.start_date, default: start },
      end_date: { ...props.end_date, default: end },
    },
  };
}

/** SkyPortal's extra check on request forms: the start may not come after the end (compared as strings). */
export function requestValidate(formData, errors) {
  if (formData?.start_date && formData?.end_date && formData.start_date > formData.end_date) {
    errors.start_date.addError("Start Date must come before End Date");
  }
  return errors;
}

// A text, number or date input whose schema has a description gets a help icon beside its label,
// the description as its tooltip.
const MuiBaseInput = MuiTemplates.BaseInputTemplate;
function TooltipBaseInputTemplate(props) {
  const { schema, label, hideLabel } = props;
  if (hideLabel || !schema?.description) return <MuiBaseInput {...props} />;
  const labelled = (
    <Box component="span" sx={{ display: "inline-flex", alignItems: "center", gap: 0.5 }}>
      {label}
      <Tooltip title={schema.description}>
        <HelpOutlineIcon sx={{ fontSize: "1rem", color: "gray" }} />
      </Tooltip>
    </Box>
  );
  return <MuiBaseInput {...props} label={labelled} />;
}

// Those same fields lose the description caption under the input (it is the tooltip now).
const MuiField = MuiTemplates.FieldTemplate;
function TooltipFieldTemplate(props) {
  const { schema, uiSchema } = props;
  const widget = getUiOptions(uiSchema).widget;
  const asTooltip =
    !schema?.enum && ["string", "number", "integer"].includes(schema?.type) && widget !== "textarea" && widget !== "checkbox";
  return asTooltip ? <MuiField {...props} description={undefined} rawDescription={undefined} /> : <MuiField {...props} />;
}

export const requestTemplates = { BaseInputTemplate: TooltipBaseInputTemplate, FieldTemplate: TooltipFieldTemplate };

/** The allocation SkyPortal's form is filled in with, around the altdata under test. */
export const ALLOCATION = { group_id: 1, pi: "A. Observer", hours_allocated: 10, instrument_id: 1, types: ["triggered"] };
export const ALTDATA_KEY = "_altdata";

/**
 * SkyPortal's new-allocation form around a facility's altdata schema. With no `properties` SkyPortal
 * shows a free-text JSON box instead, which this returns too (the facility's form is then not shown).
 */
export function allocationSchema(altdata, instrumentTitle) {
  const embedded = altdata?.properties
    ? {
        type: "object",
        title: "Allocation Parameters/Credentials",
        properties: altdata.properties,
        required: altdata.required,
        dependencies: altdata.dependencies || {},
      }
    : { type: "string", title: "Allocation Parameters/Credentials json (i.e. {'slack_token': 'testtoken'}" };
  return {
    type: "object",
    properties: {
      // SkyPortal gives Group and Instrument the default "" (not among their choices: RJSF logs a
      // console error for each); the check fills both, so it leaves those defaults out.
      group_id: { type: "integer", title: "Group", oneOf: [{ enum: [ALLOCATION.group_id], type: "integer", title: "Observers" }] },
      types: {
        type: "array",
        title: "Types",
        items: { type: "string", enum: ["triggered", "forced_photometry", "observation_plan"] },
        uniqueItems: true,
        default: [],
      },
      pi: { type: "string", title: "PI", default: "" },
      hours_allocated: { type: "number", title: "Hours allocated" },
      instrument_id: {
        type: "integer",
        title: "Instrument",
        oneOf: [{ enum: [ALLOCATION.instrument_id], title: instrumentTitle }],
      },
      [ALTDATA_KEY]: embedded,
    },
    required: ["group_id", "pi", "instrument_id", "hours_allocated"],
  };
}
