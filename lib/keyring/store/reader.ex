defmodule Keyring.Store.Reader do
  @moduledoc false
  # The lazy reads of Keyring.Store: a blob in pieces, the cids in pages.

  alias Keyring.{Hash, Native}
  alias Keyring.Store.{Cid, CorruptBlobError}

  @list_page 1_000

  @doc "A blob as a stream of pieces, read from a handle opened now."
  @spec stream(reference(), <<_::256>>, pos_integer(), boolean()) ::
          {:ok, Enumerable.t()} | {:error, term()}
  def stream(handle, raw, piece, verify?) do
    case Native.store_reader_open(handle, raw) do
      {:ok, nil} -> {:error, :not_found}
      {:ok, {reader, size}} -> {:ok, pieces(reader, raw, size, piece, verify?)}
      {:error, _} = error -> error
    end
  end

  defp pieces(reader, raw, size, piece, verify?) do
    Stream.resource(
      fn -> {0, if(verify?, do: Hash.new())} end,
      fn
        :done ->
          {:halt, :done}

        {offset, hasher} when offset >= size ->
          if hasher && Hash.finalize(hasher) != raw,
            do: raise(CorruptBlobError, cid: Cid.encode(raw))

          {:halt, :done}

        {offset, hasher} ->
          case Native.store_reader_read(reader, offset, min(piece, size - offset)) do
            {:ok, bytes} ->
              hasher && Hash.update(hasher, bytes)
              {[bytes], {offset + byte_size(bytes), hasher}}

            {:error, reason} ->
              raise "Keyring.Store.stream/2 failed reading #{Cid.encode(raw)}: #{inspect(reason)}"
          end
      end,
      fn _ -> :ok end
    )
  end

  @doc "Every cid, in cid order, read in pages."
  @spec list(reference()) :: Enumerable.t()
  def list(handle) do
    Stream.resource(
      fn -> nil end,
      fn
        :done ->
          {:halt, :done}

        after_cid ->
          case Native.store_list(handle, after_cid, @list_page) do
            {:ok, []} -> {:halt, :done}
            {:ok, page} -> {Enum.map(page, &Cid.encode/1), List.last(page)}
            {:error, reason} -> raise "Keyring.Store.list/1 failed: #{inspect(reason)}"
          end
      end,
      fn _ -> :ok end
    )
  end

  @doc "Verifies every blob: `{:ok, count}` or `{:error, {:corrupt_blobs, cids}}`."
  @spec check(reference()) :: {:ok, non_neg_integer()} | {:error, {:corrupt_blobs, [Cid.t()]}}
  def check(handle) do
    {count, bad} =
      handle
      |> list()
      |> Enum.reduce({0, []}, fn cid, {count, bad} ->
        case Native.store_verify(handle, Cid.parse!(cid)) do
          {:ok, false} -> {count + 1, [cid | bad]}
          {:error, :content_mismatch} -> {count + 1, [cid | bad]}
          _ -> {count + 1, bad}
        end
      end)

    if bad == [], do: {:ok, count}, else: {:error, {:corrupt_blobs, Enum.reverse(bad)}}
  end
end
