defmodule Keyring.Sync.Transfer do
  @moduledoc false
  # A transfer's state as Keyring.Sync reports it: a plain map built from the
  # downloader's progress reports (pure functions, no process).

  @type t :: map()

  @spec new(pos_integer(), binary(), [binary()], [binary()], atom(), integer()) :: t()
  def new(id, keyring, cids, providers, reason, now_ms) do
    %{
      id: id,
      keyring: keyring,
      cids: cids,
      reason: reason,
      stage: :running,
      providers: Map.new(providers, &{&1, 0}),
      blobs_done: 0,
      blobs_total: length(cids),
      bytes_done: 0,
      bytes_total: 0,
      rate: 0.0,
      eta_s: nil,
      stalled: false,
      errors: [],
      not_found: [],
      started_ms: now_ms,
      finished_ms: nil
    }
  end

  @doc false
  # Folds one progress map from the NIF into the transfer.
  @spec progress(t(), map()) :: t()
  def progress(t, p) do
    providers = Enum.reduce(p.providers, t.providers, fn {k, n}, acc -> Map.put(acc, k, n) end)

    %{
      t
      | blobs_done: p.blobs_done,
        blobs_total: max(p.blobs_total, t.blobs_total),
        bytes_done: p.bytes_done,
        bytes_total: p.bytes_total,
        rate: p.rate,
        eta_s: eta(p.bytes_total - p.bytes_done, p.rate),
        stalled: p.stalled,
        errors: Enum.map(p.errors, fn {k, why} -> %{provider: k, error: why} end),
        not_found: p.not_found,
        providers: providers
    }
  end

  @doc false
  # The transfer ended with `result` from the NIF.
  @spec finish(t(), term(), integer()) :: t()
  def finish(t, result, now_ms) do
    {stage, p} =
      case result do
        {:ok, p} -> {:done, p}
        {:error, :stalled, p} -> {:stalled, p}
        {:error, :not_found, p} -> {:not_found, p}
        {:error, other, p} -> {{:failed, other}, p}
        {:error, other} -> {{:failed, other}, nil}
      end

    t = if is_map(p), do: progress(t, p), else: t
    %{t | stage: stage, finished_ms: now_ms, eta_s: if(stage == :done, do: 0, else: nil)}
  end

  defp eta(_left, rate) when rate <= 0, do: nil
  defp eta(left, rate), do: Float.round(max(left, 0) / rate, 1)
end
