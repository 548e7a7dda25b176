defmodule Keyring.DAG.Event do
  @moduledoc """
  One event of an agent's hash-chained log: a payload, the previous event
  (`nil` for the first, whose `seq` is 0; then `seq` counts up by one) and
  optional attachments (links to blobs or nodes the event refers to).
  Build chains with `Keyring.DAG.append_event/3` or `Keyring.DAG.put_events/2`,
  which fill in `seq` and `prev`.
  """

  defstruct seq: 0, prev: nil, payload: "", attachments: []

  @type t :: %__MODULE__{
          seq: non_neg_integer(),
          prev: Keyring.Store.Cid.t() | nil,
          payload: binary(),
          attachments: [Keyring.DAG.Raw.link()]
        }
end
