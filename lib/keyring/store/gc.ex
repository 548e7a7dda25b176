defmodule Keyring.Store.GC do
  @moduledoc false
  # Runs garbage collection to the end, one bounded step at a time. Each step
  # is one write in the store's queue (decided and applied inside one commit,
  # see native/keyring_store/src/gc.rs), so puts and tags interleave with GC
  # and none can fall between its "mark" and its "sweep".

  alias Keyring.Native
  alias Keyring.Native.Reply

  @type totals :: %{
          steps: non_neg_integer(),
          examined: non_neg_integer(),
          blobs: non_neg_integer(),
          partials: non_neg_integer(),
          bytes: non_neg_integer(),
          orphans: non_neg_integer()
        }

  @spec run(reference(), pos_integer(), timeout()) :: {:ok, totals()} | {:error, term()}
  def run(handle, budget, timeout) do
    zero = %{steps: 0, examined: 0, blobs: 0, partials: 0, bytes: 0, orphans: 0}
    step(handle, :start, budget, timeout, zero)
  end

  defp step(_handle, :done, _budget, _timeout, acc), do: {:ok, acc}

  defp step(handle, cursor, budget, timeout, acc) do
    case Reply.call(&Native.store_gc_step(handle, &1, cursor, budget), timeout) do
      {:ok, {next, examined, blobs, partials, bytes, orphans}} ->
        acc = %{
          steps: acc.steps + 1,
          examined: acc.examined + examined,
          blobs: acc.blobs + blobs,
          partials: acc.partials + partials,
          bytes: acc.bytes + bytes,
          orphans: acc.orphans + orphans
        }

        step(handle, next, budget, timeout, acc)

      {:error, _} = error ->
        error
    end
  end
end
