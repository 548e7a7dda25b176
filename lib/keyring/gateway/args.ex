defmodule Keyring.Gateway.Args do
  @moduledoc false
  # Reading operation arguments (a JSON object from a body or MCP, or query
  # strings): each reader returns the value or throws {:bad_request, text},
  # which Keyring.Gateway.Operations turns into a 400 / a tool error.

  alias Keyring.Identity.NodeId

  def string(args, key, opts \\ []) do
    max = Keyword.get(opts, :max, 4096)

    case Map.get(args, key) do
      nil -> default(key, opts)
      v when is_binary(v) and byte_size(v) in 1..max -> v
      v when is_binary(v) -> bad("#{key} must be 1..#{max} bytes")
      _ -> bad("#{key} must be a string")
    end
  end

  def integer(args, key, opts \\ []) do
    {min, max} = {Keyword.get(opts, :min, 0), Keyword.get(opts, :max, 2 ** 53)}

    value =
      case Map.get(args, key) do
        nil -> default(key, opts)
        v when is_integer(v) -> v
        v when is_binary(v) -> parse_int(key, v)
        _ -> bad("#{key} must be an integer")
      end

    cond do
      is_nil(value) -> nil
      value < min or value > max -> bad("#{key} must be in #{min}..#{max}")
      true -> value
    end
  end

  def boolean(args, key, default) do
    case Map.get(args, key, default) do
      v when is_boolean(v) -> v
      "true" -> true
      "false" -> false
      _ -> bad("#{key} must be true or false")
    end
  end

  def strings(args, key, opts \\ []) do
    case Map.get(args, key, []) do
      list when is_list(list) and length(list) <= 64 ->
        if Enum.all?(list, &(is_binary(&1) and byte_size(&1) in 1..64)),
          do: list,
          else: bad("#{key} must be a list of short strings")

      _ ->
        if opts[:required], do: bad("#{key} is required"), else: bad("#{key} must be a list")
    end
  end

  @doc "A node id or keyring id in text form (52 characters) as 32 bytes."
  def key(args, key) do
    text = string(args, key, required: true, max: 64)

    case NodeId.parse(text) do
      {:ok, bytes} -> bytes
      _ -> bad("#{key} must be a 52-character id")
    end
  end

  def bad(message), do: throw({:bad_request, message})

  defp default(key, opts) do
    if opts[:required], do: bad("#{key} is required"), else: Keyword.get(opts, :default)
  end

  defp parse_int(key, text) do
    case Integer.parse(text) do
      {i, ""} -> i
      _ -> bad("#{key} must be an integer")
    end
  end
end
