defmodule Keyring.Sync.Options do
  @moduledoc false
  # The `sync:` options schema: validation (Keyring.start_link/1) and the
  # docs table in Keyring.Sync both come from it.

  @schema [
    mirror: [
      type: {:list, :string},
      default: [],
      doc:
        "keyrings (ids, text form) whose shared blobs this node fetches from every member that links up"
    ],
    auto: [
      type: :boolean,
      default: true,
      doc: "run a sync round when a member of a mirrored keyring links up"
    ],
    stall_ms: [
      type: :pos_integer,
      default: 5_000,
      doc: "a request that verifies no group for this long moves to another provider"
    ],
    slice_groups: [
      type: :pos_integer,
      default: 64,
      doc: "16 KiB groups per range handed to one provider at a time (64 = 1 MiB)"
    ],
    keep_finished: [
      type: :pos_integer,
      default: 50,
      doc: "finished transfers kept for `Keyring.Sync.transfers/1`"
    ]
  ]

  @spec schema() :: Keyring.Options.schema()
  def schema, do: @schema

  @spec validate!(keyword()) :: keyword()
  def validate!(opts), do: Keyring.Options.validate!(opts, @schema, "sync")
end
