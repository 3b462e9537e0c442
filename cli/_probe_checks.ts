/**
 * What the conformance prober reports: the checks of each suite (named after
 * the rule each tests, in STANDARD.md or the reference's errata), their
 * results (pass, fail with what was expected and seen, or not applicable and
 * why), and the two ways of printing a report: a table for people and JSON
 * for machines.
 *
 * @module
 */

/** A check's outcome. */
export type CheckStatus = "pass" | "fail" | "not_applicable";

/** A check of a suite: its name and the rule it tests. */
export interface CheckSpec {
  /** Short name, as `--skip` takes it: `"request-expired"`. */
  readonly name: string;
  /** Where the rule is written: `"STANDARD.md: Processing Connection Requests"`. */
  readonly rule: string;
  /** The rule in one sentence: what a conforming peer does. */
  readonly expects: string;
}

/** The result of one check. */
export interface CheckResult {
  /** The check's name. */
  readonly name: string;
  /** Where its rule is written. */
  readonly rule: string;
  /** Pass, fail or not applicable. */
  readonly status: CheckStatus;
  /** What a conforming peer does. */
  readonly expected: string;
  /** What the probe saw (for a pass, the evidence; for a fail, the difference). */
  readonly seen: string;
  /** Why it does not apply, for `not_applicable`. */
  readonly reason?: string;
}

/** A whole run. */
export interface ProbeReport {
  /** `"server"` or `"client"`. */
  readonly target: "server" | "client";
  /** The address probed (server) or listened on (client). */
  readonly address: string;
  /** Whether every applicable check passed. */
  readonly ok: boolean;
  /** How many passed, failed and did not apply. */
  readonly summary: { pass: number; fail: number; notApplicable: number };
  /** Seconds the run took. */
  readonly seconds: number;
  /** Every check, in suite order. */
  readonly checks: readonly CheckResult[];
  /** Facts about the peer the probe learned on the way (not judged). */
  readonly notes: readonly string[];
}

/** The checks of `netcode probe server`, in the order they are reported. */
export const SERVER_CHECKS: readonly CheckSpec[] = [
  {
    name: "handshake",
    rule: "STANDARD.md: Processing Connection Requests / Response Packets",
    expects:
      "a valid request gets a challenge, its response a keep-alive with the client's index (below max clients) and the server's max clients",
  },
  {
    name: "packet-nonce",
    rule: "IMPLEMENTERS.md 2 (nonce construction)",
    expects:
      "encrypted packets use the nonce [0 0 0 0][sequence u64 little-endian]",
  },
  {
    name: "global-sequence",
    rule: "IMPLEMENTERS.md 3; STANDARD.md global packets",
    expects:
      "challenge and denied packets carry sequences from 2^63 up, never one twice for different bytes",
  },
  {
    name: "no-amplification",
    rule: "STANDARD.md: Processing Connection Requests, rule 4",
    expects:
      "what the server sends in answer to a connection request is smaller than the request; junk gets no answer",
  },
  {
    name: "request-expired",
    rule: "STANDARD.md: connect token expire timestamp <= now: ignore",
    expects: "a request whose token expired is ignored",
  },
  {
    name: "request-protocol-id",
    rule: "STANDARD.md: protocol id does not match: ignore",
    expects: "a request for another protocol id is ignored",
  },
  {
    name: "request-version",
    rule: 'STANDARD.md: version info is not "NETCODE 1.02": ignore',
    expects: "a NETCODE 1.01 request is ignored",
  },
  {
    name: "request-size",
    rule: "STANDARD.md: not exactly 1078 bytes: ignore",
    expects: "requests of 1077 and 1079 bytes are ignored",
  },
  {
    name: "request-server-address",
    rule: "STANDARD.md: server address not in the private token: ignore",
    expects: "a request whose token names only another server is ignored",
  },
  {
    name: "request-address-connected",
    rule: "STANDARD.md: a client from this address is connected: ignore",
    expects:
      "a request (new token) from the address of a connected client is ignored",
  },
  {
    name: "request-client-id-connected",
    rule: "STANDARD.md: a client with this client id is connected: ignore",
    expects:
      "a request (new token, other address) for a connected client id is ignored",
  },
  {
    name: "request-token-reuse",
    rule: "STANDARD.md: token already used from another address: ignore",
    expects:
      "a request whose token MAC was first used from another address is ignored",
  },
  {
    name: "keep-alive-rate",
    rule:
      "STANDARD.md: Connected Clients (keep-alives at some rate, like 10 Hz)",
    expects:
      "an idle connected client gets keep-alives at about 10 Hz (5..20 Hz, no gap over 300 ms)",
  },
  {
    name: "timeout",
    rule: "STANDARD.md: Connected Clients (timeout)",
    expects:
      "a silent client is disconnected after the token's timeout, not before",
  },
  {
    name: "timeout-disabled",
    rule: "STANDARD.md: negative timeout values disable timeout",
    expects: "a silent client whose token's timeout is -1 stays connected",
  },
  {
    name: "timeout-zero",
    rule:
      "STANDARD.md: negative timeouts disable it, 0 is not defined; the reference skips timeouts <= 0",
    expects:
      "a client whose token's timeout is 0 connects and is not timed out",
  },
  {
    name: "replay-keep-alive",
    rule: "STANDARD.md: Replay Protection",
    expects:
      "a keep-alive replayed over and over does not keep a silent client connected",
  },
  {
    name: "replay-payload",
    rule: "STANDARD.md: Replay Protection",
    expects:
      "a replayed payload, and one 256 or more behind the most recent sequence, are not delivered (needs --echo)",
  },
  {
    name: "replay-disconnect",
    rule: "STANDARD.md: Replay Protection",
    expects:
      "a disconnect with an already received sequence, or one too old, is ignored",
  },
  {
    name: "disconnect-frees-slot",
    rule: "STANDARD.md: Connected Clients (disconnect packet resets the slot)",
    expects:
      "a client that sends disconnect packets leaves its slot: its address and client id may connect again",
  },
  {
    name: "denied-when-full",
    rule: "STANDARD.md: no client slots available: connection denied",
    expects:
      "with every slot taken, a request gets a connection denied packet (needs --max-clients)",
  },
  {
    name: "payload-echo",
    rule: "STANDARD.md: payload packets 1..1200 bytes",
    expects:
      "payloads of every size from 1 to 1200 bytes come back byte for byte (needs --echo)",
  },
];

/** The checks of `netcode probe client`, in the order they are reported. */
export const CLIENT_CHECKS: readonly CheckSpec[] = [
  {
    name: "request",
    rule: "STANDARD.md: connection request packet",
    expects:
      "requests are 1078 bytes with NETCODE 1.02, the protocol id, an unexpired token that decrypts and names this server",
  },
  {
    name: "request-rate",
    rule: "STANDARD.md: Sending Connection Request (at some rate, like 10 Hz)",
    expects:
      "unanswered, the client repeats its request at about 10 Hz (5..20 Hz)",
  },
  {
    name: "response",
    rule: "STANDARD.md: Sending Challenge Response",
    expects:
      "after a challenge the client sends responses carrying its sequence and token byte for byte, repeated at about 10 Hz until answered",
  },
  {
    name: "packet-nonce",
    rule: "IMPLEMENTERS.md 2 (nonce construction)",
    expects:
      "encrypted packets use the nonce [0 0 0 0][sequence u64 little-endian]",
  },
  {
    name: "keep-alive",
    rule: "STANDARD.md: Connected (keep-alives at some rate, like 10 Hz)",
    expects:
      "while connected the client never goes quiet for over 300 ms (keep-alives when it sends nothing else), keep-alives 8 bytes",
  },
  {
    name: "payload",
    rule: "STANDARD.md: payload packets; Replay Protection (sequences)",
    expects: "payloads are 1..1200 bytes and no sequence is used twice",
  },
  {
    name: "replay",
    rule: "STANDARD.md: Replay Protection",
    expects:
      "a disconnect with an already received sequence, or one too old, is ignored: the client stays connected",
  },
  {
    name: "disconnect",
    rule: "STANDARD.md: Connected (redundant disconnect packets)",
    expects: "a clean disconnect sends 10 disconnect packets",
  },
  {
    name: "timeout",
    rule: "STANDARD.md: Connected (connection timed out)",
    expects:
      "when the server goes silent the client stops after the token's timeout, without disconnect packets",
  },
  {
    name: "denied",
    rule: "STANDARD.md: Sending Connection Request (connection denied)",
    expects:
      "after a connection denied packet the client stops sending to that server",
  },
  {
    name: "fallback",
    rule: "STANDARD.md: Sending Connection Request (next server address)",
    expects:
      "when the token's first server never answers, the client moves to the next one after the timeout and connects there",
  },
];

/** Collects results for a suite; checks not reported end up not applicable. */
export interface Results {
  /** Records a pass with its evidence. */
  pass(name: string, seen: string): void;
  /** Records a failure with what was seen. */
  fail(name: string, seen: string): void;
  /** Records that a check does not apply, and why. */
  notApplicable(name: string, reason: string): void;
  /** Records a fact about the peer. */
  note(text: string): void;
  /** Whether a check is skipped (with `--skip`) or already has a result. */
  done(name: string): boolean;
  /** Whether a check is to run at all. */
  wanted(name: string): boolean;
  /** The report. */
  report(
    target: "server" | "client",
    address: string,
    seconds: number,
  ): ProbeReport;
}

/**
 * Starts collecting results for a suite.
 *
 * @param specs The suite's checks.
 * @param skip Names to skip (each must be in the suite).
 * @returns The collector.
 * @throws {RangeError} When a name to skip is not one of the suite's.
 */
export function createResults(
  specs: readonly CheckSpec[],
  skip: readonly string[] = [],
): Results {
  const byName = new Map(specs.map((spec) => [spec.name, spec]));
  for (const name of skip) {
    if (!byName.has(name)) {
      throw new RangeError(
        `Cannot skip "${name}": not a check of this suite (${
          specs.map((spec) => spec.name).join(", ")
        })`,
      );
    }
  }
  const results = new Map<string, CheckResult>();
  const notes: string[] = [];
  const record = (
    name: string,
    status: CheckStatus,
    seen: string,
    reason?: string,
  ) => {
    const spec = byName.get(name);
    if (spec === undefined) throw new RangeError(`No check named ${name}`);
    // The first verdict stands: a later one (from cleanup) never overrides it.
    if (results.has(name)) return;
    results.set(name, {
      name,
      rule: spec.rule,
      status,
      expected: spec.expects,
      seen,
      ...(reason === undefined ? {} : { reason }),
    });
  };
  for (const name of skip) {
    record(name, "not_applicable", "", "skipped with --skip");
  }
  return {
    pass: (name, seen) => record(name, "pass", seen),
    fail: (name, seen) => record(name, "fail", seen),
    notApplicable: (name, reason) => record(name, "not_applicable", "", reason),
    note: (text) => void notes.push(text),
    done: (name) => results.has(name),
    wanted: (name) => !results.has(name),
    report(target, address, seconds) {
      const checks = specs.map((spec) =>
        results.get(spec.name) ?? {
          name: spec.name,
          rule: spec.rule,
          status: "not_applicable" as const,
          expected: spec.expects,
          seen: "",
          reason: "not reached (an earlier step failed)",
        }
      );
      const count = (status: CheckStatus) =>
        checks.filter((check) => check.status === status).length;
      const summary = {
        pass: count("pass"),
        fail: count("fail"),
        notApplicable: count("not_applicable"),
      };
      return {
        target,
        address,
        ok: summary.fail === 0,
        summary,
        seconds,
        checks,
        notes: [...notes],
      };
    },
  };
}

const STATUS_TEXT: Record<CheckStatus, string> = {
  pass: "pass",
  fail: "FAIL",
  not_applicable: "n/a",
};

/**
 * The report as a table for people: one row per check, then the failures'
 * expectations and rules, the notes and a summary line.
 *
 * @param report The report.
 * @param width Columns to wrap details at.
 * @returns The text (no trailing newline).
 */
export function formatTable(report: ProbeReport, width = 100): string {
  const nameWidth = Math.max(5, ...report.checks.map((c) => c.name.length));
  const indent = nameWidth + 2 + 6 + 2;
  const lines = [
    `netcode probe ${report.target} ${report.address}`,
    "",
    `${"CHECK".padEnd(nameWidth)}  RESULT  DETAIL`,
  ];
  const wrap = (text: string, first: string, hanging = indent) => {
    const room = Math.max(30, width - hanging);
    const words = text.split(/\s+/).filter((word) => word !== "");
    let line = first;
    let lineText = "";
    const out: string[] = [];
    for (const word of words) {
      if (lineText !== "" && lineText.length + 1 + word.length > room) {
        out.push(line + lineText);
        line = " ".repeat(hanging);
        lineText = word;
      } else {
        lineText = lineText === "" ? word : `${lineText} ${word}`;
      }
    }
    out.push(line + lineText);
    return out;
  };
  for (const check of report.checks) {
    const head = `${check.name.padEnd(nameWidth)}  ${
      STATUS_TEXT[check.status].padEnd(6)
    }  `;
    if (check.status === "pass") {
      lines.push(...wrap(check.seen, head));
    } else if (check.status === "not_applicable") {
      lines.push(...wrap(check.reason ?? "", head));
    } else {
      lines.push(...wrap(`expected: ${check.expected}`, head));
      lines.push(...wrap(`seen: ${check.seen}`, " ".repeat(indent)));
      lines.push(...wrap(`rule: ${check.rule}`, " ".repeat(indent)));
    }
  }
  if (report.notes.length > 0) {
    lines.push("", "notes:");
    for (const note of report.notes) lines.push(...wrap(note, "  - ", 4));
  }
  const { pass, fail, notApplicable } = report.summary;
  lines.push(
    "",
    `${pass} passed, ${fail} failed, ${notApplicable} not applicable in ${
      report.seconds.toFixed(1)
    } s: ${report.ok ? "ok" : "NOT CONFORMING"}`,
  );
  return lines.join("\n");
}

/**
 * The report as JSON for machines (see the README for the schema).
 *
 * @param report The report.
 * @returns Pretty-printed JSON.
 */
export function formatJson(report: ProbeReport): string {
  return JSON.stringify(
    { tool: "netcode probe", schema: 1, ...report },
    null,
    2,
  );
}
