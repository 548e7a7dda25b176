defmodule Keyring.DAG.Codec do
  @moduledoc false
  # Node structs ⇄ the NIF's node terms (cids as 32-byte binaries), and the
  # choice between the normal-scheduler NIFs (small nodes, charged to the
  # caller's timeslice) and the dirty-CPU ones (large nodes).

  alias Keyring.DAG.{Directory, Event, Raw}
  alias Keyring.Native
  alias Keyring.Store.Cid

  # Nodes up to about this many encoded bytes are encoded or decoded on the
  # caller's scheduler (tens of microseconds, charged to its timeslice);
  # larger ones on a dirty CPU scheduler. A link costs about 40 bytes.
  @small_bytes 8 * 1024
  @link_bytes 40

  @spec encode(Keyring.DAG.dag_node()) ::
          {:ok, {<<_::256>>, binary()}} | {:error, {:invalid_node, String.t()}}
  def encode(node) do
    {term, bytes, links} = to_term(node)

    if bytes + links * @link_bytes <= @small_bytes,
      do: Native.dag_encode(term),
      else: Native.dag_encode_dirty(term)
  end

  @spec decode(binary()) :: {:ok, Keyring.DAG.dag_node()} | {:error, {:invalid_node, String.t()}}
  def decode(bytes) do
    result =
      if byte_size(bytes) <= @small_bytes,
        do: Native.dag_decode(bytes),
        else: Native.dag_decode_dirty(bytes)

    with {:ok, term} <- result, do: {:ok, from_term(term)}
  end

  defp to_term(%Raw{data: data, links: links}) when is_binary(data) and is_list(links) do
    {{:raw, data, Enum.map(links, &link/1)}, byte_size(data), length(links)}
  end

  defp to_term(%Directory{entries: entries}) when is_list(entries) do
    entries = Enum.map(entries, &entry/1)
    names = Enum.reduce(entries, 0, fn {name, _, _, _}, n -> n + name_size(name) end)
    {{:directory, entries}, names, length(entries)}
  end

  defp to_term(%Event{seq: seq, prev: prev, payload: payload, attachments: attachments})
       when is_binary(payload) and is_list(attachments) do
    prev = if prev == nil, do: nil, else: Cid.parse!(prev)
    term = {:event, seq, prev, payload, Enum.map(attachments, &link/1)}
    {term, byte_size(payload), length(attachments)}
  end

  defp to_term(other),
    do:
      raise(
        ArgumentError,
        "expected a %Keyring.DAG.Raw{}, %Keyring.DAG.Directory{} or %Keyring.DAG.Event{}, got: " <>
          inspect(other, limit: 5)
      )

  defp name_size(name) when is_binary(name), do: byte_size(name)
  defp name_size(_), do: 0

  defp link({kind, cid}) when kind in [:node, :blob], do: {kind, Cid.parse!(cid)}

  defp link(other),
    do: raise(ArgumentError, "a link is {:node, cid} or {:blob, cid}, got: #{inspect(other)}")

  defp entry(%{name: name, kind: kind, size: size, cid: cid}),
    do: {name, kind, size, Cid.parse!(cid)}

  defp entry(other),
    do:
      raise(
        ArgumentError,
        "a directory entry is %{name: _, kind: _, size: _, cid: _}, got: #{inspect(other)}"
      )

  @spec from_term(tuple()) :: Keyring.DAG.dag_node()
  def from_term({:raw, data, links}), do: %Raw{data: data, links: Enum.map(links, &hex_link/1)}

  def from_term({:directory, entries}) do
    %Directory{
      entries:
        for {name, kind, size, cid} <- entries do
          %{name: name, kind: kind, size: size, cid: Cid.encode(cid)}
        end
    }
  end

  def from_term({:event, seq, prev, payload, attachments}) do
    %Event{
      seq: seq,
      prev: prev && Cid.encode(prev),
      payload: payload,
      attachments: Enum.map(attachments, &hex_link/1)
    }
  end

  defp hex_link({kind, cid}), do: {kind, Cid.encode(cid)}
end
