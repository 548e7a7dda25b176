defmodule Keyring.Mesh.Options do
  @moduledoc false
  # The `mesh:` options schema: validation (Keyring.start_link/1) and the
  # docs table in Keyring.Mesh both come from it.

  @schema [
    host: [type: :string, default: "127.0.0.1", doc: "address both endpoints bind"],
    port: [type: :non_neg_integer, default: 0, doc: "member endpoint UDP port (0 = any)"],
    join_port: [type: :non_neg_integer, default: 0, doc: "join endpoint UDP port (0 = any)"],
    advertise: [
      type: :address,
      doc: "member address put in invites and presence, `host:port` (default: the bound one)"
    ],
    advertise_join: [
      type: :address,
      doc: "join address put in invites, `host:port` (default: the bound one)"
    ],
    max_payload: [
      type: :pos_integer,
      default: 16 * 1024 * 1024,
      doc: "largest frame accepted from a peer (bytes)"
    ],
    keep_alive_ms: [type: :pos_integer, default: 2_000, doc: "liveness ping interval"],
    idle_timeout_ms: [
      type: :pos_integer,
      default: 10_000,
      doc: "a connection silent this long is dead"
    ],
    anti_entropy_ms: [
      type: :pos_integer,
      default: 5_000,
      doc:
        "how often linked members compare membership log heads (anti-entropy): a member that " <>
          "missed a push (a revocation, a fork branch) converges within about this long; a " <>
          "member accepts at most 4 exchanges per second per keyring from one peer (burst 8)"
    ],
    joins_per_issuer_per_hour: [
      type: :pos_integer,
      default: 100,
      doc: "joins one admin's invites may admit per hour (counted from the log)"
    ],
    max_handlers_per_peer: [
      type: :pos_integer,
      default: 64,
      doc: "inbound calls and casts of one peer running at once; more are refused (`:busy`)"
    ]
  ]

  @spec schema() :: Keyring.Options.schema()
  def schema, do: @schema

  @spec validate!(keyword()) :: keyword()
  def validate!(opts), do: Keyring.Options.validate!(opts, @schema, "mesh")
end
