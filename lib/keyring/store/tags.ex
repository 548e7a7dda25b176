defmodule Keyring.Store.Tags do
  @moduledoc false
  # Tags as the NIF takes them: {:pin, name} and {:share, ring_id, name}. An
  # empty name means "named after the cid" (one anonymous tag per cid and
  # scope); the store fills it in, so a put can carry one before its cid is
  # known.

  alias Keyring.{Instance, Native}
  alias Keyring.Identity.NodeId
  alias Keyring.Native.Reply
  alias Keyring.Store.Cid

  @max_name 1024
  @timeout 60_000

  # The sharing and pinning functions of Keyring.Store (documented there).

  def share(cid, ring, opts) do
    opts = Keyword.validate!(opts, instance: Keyring, name: nil, timeout: @timeout)
    set({:share, ring!(ring), name!(opts[:name])}, Cid.parse!(cid), opts)
  end

  def unshare(cid, ring, opts) do
    opts = Keyword.validate!(opts, instance: Keyring, name: nil, timeout: @timeout)
    delete({:share, ring!(ring), name!(opts[:name])}, Cid.parse!(cid), opts)
  end

  def shared_in?(cid, ring, opts) do
    opts = Keyword.validate!(opts, instance: Keyring)

    case Native.store_shared_in(handle(opts), Cid.parse!(cid), ring!(ring)) do
      {:ok, shared?} -> shared?
      {:error, reason} -> raise "Keyring.Store.shared_in?/3 failed: #{inspect(reason)}"
    end
  end

  def tags(ring, opts), do: list(ring!(ring), opts)

  def pin(cid, opts) do
    opts = Keyword.validate!(opts, instance: Keyring, name: nil, timeout: @timeout)
    set({:pin, name!(opts[:name])}, Cid.parse!(cid), opts)
  end

  def unpin(cid, opts) do
    opts = Keyword.validate!(opts, instance: Keyring, name: nil, timeout: @timeout)
    delete({:pin, name!(opts[:name])}, Cid.parse!(cid), opts)
  end

  def pins(opts), do: list(nil, opts)

  defp set(tag, raw, opts) do
    handle = handle(opts)

    case Reply.call(&Native.store_set_tag(handle, &1, tag, raw), opts[:timeout]) do
      {:ok, nil} -> {:ok, nil}
      {:ok, previous} -> {:ok, Cid.encode(previous)}
      error -> error
    end
  end

  defp delete(tag, raw, opts) do
    handle = handle(opts)
    Reply.call(&Native.store_delete_tag(handle, &1, tag, raw), opts[:timeout])
  end

  defp list(ring, opts) do
    opts = Keyword.validate!(opts, instance: Keyring, limit: 10_000, after: nil)

    case Native.store_tags(handle(opts), ring, opts[:after], opts[:limit]) do
      {:ok, pairs} -> present(pairs)
      {:error, reason} -> raise "Keyring.Store tags failed: #{inspect(reason)}"
    end
  end

  defp handle(opts), do: Instance.fetch!(opts[:instance], :store)

  @doc "The raw 32-byte id of a keyring given raw or in text form."
  @spec ring!(term()) :: <<_::256>>
  def ring!(<<_::256>> = raw), do: raw

  def ring!(text) when is_binary(text) do
    case NodeId.parse(text) do
      {:ok, raw} -> raw
      {:error, _} -> raise ArgumentError, "invalid keyring id #{inspect(text)}"
    end
  end

  def ring!(other), do: raise(ArgumentError, "invalid keyring id #{inspect(other)}")

  @doc "A tag's name: the one given, else empty (named after the cid)."
  @spec name!(term()) :: binary()
  def name!(nil), do: ""
  def name!(name) when is_binary(name) and byte_size(name) in 1..@max_name, do: name

  def name!(name),
    do: raise(ArgumentError, "a tag name is a binary of 1 byte to 1 KiB, got: #{inspect(name)}")

  @doc "The tags a put's `pin:` and `share:` options ask for."
  @spec from_put_opts(keyword()) :: [tuple()]
  def from_put_opts(opts) do
    pins =
      case opts[:pin] do
        nil -> []
        false -> []
        true -> [{:pin, ""}]
        name -> [{:pin, name!(name)}]
      end

    shares =
      opts[:share]
      |> List.wrap()
      |> Enum.map(fn
        {ring, name} -> {:share, ring!(ring), name!(name)}
        ring -> {:share, ring!(ring), ""}
      end)

    pins ++ shares
  end

  # `{name, cid}` pairs as the API returns them (`nil` for a tag named after its cid).
  defp present(pairs) do
    Enum.map(pairs, fn
      {raw, raw} -> {nil, Cid.encode(raw)}
      {name, raw} -> {name, Cid.encode(raw)}
    end)
  end
end
